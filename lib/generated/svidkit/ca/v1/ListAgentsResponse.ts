// Original file: protos/svidkit/ca/v1/ca.proto

import type { Agent as _svidkit_ca_v1_Agent, Agent__Output as _svidkit_ca_v1_Agent__Output } from '../../../svidkit/ca/v1/Agent.js';

export interface ListAgentsResponse {
  'agents'?: (_svidkit_ca_v1_Agent)[];
}

export interface ListAgentsResponse__Output {
  'agents': (_svidkit_ca_v1_Agent__Output)[];
}
