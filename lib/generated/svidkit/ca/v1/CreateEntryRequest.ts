// Original file: protos/svidkit/ca/v1/ca.proto

import type { RegistrationEntry as _svidkit_ca_v1_RegistrationEntry, RegistrationEntry__Output as _svidkit_ca_v1_RegistrationEntry__Output } from '../../../svidkit/ca/v1/RegistrationEntry.js';

export interface CreateEntryRequest {
  /**
   * id and created_at are ignored; the CA assigns them.
   */
  'entry'?: (_svidkit_ca_v1_RegistrationEntry | null);
}

export interface CreateEntryRequest__Output {
  /**
   * id and created_at are ignored; the CA assigns them.
   */
  'entry': (_svidkit_ca_v1_RegistrationEntry__Output | null);
}
