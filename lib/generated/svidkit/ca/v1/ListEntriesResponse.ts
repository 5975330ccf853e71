// Original file: protos/svidkit/ca/v1/ca.proto

import type { RegistrationEntry as _svidkit_ca_v1_RegistrationEntry, RegistrationEntry__Output as _svidkit_ca_v1_RegistrationEntry__Output } from '../../../svidkit/ca/v1/RegistrationEntry.js';

export interface ListEntriesResponse {
  'entries'?: (_svidkit_ca_v1_RegistrationEntry)[];
}

export interface ListEntriesResponse__Output {
  'entries': (_svidkit_ca_v1_RegistrationEntry__Output)[];
}
