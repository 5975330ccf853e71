// Original file: protos/spiffe/workload/workload.proto

import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from './google/protobuf/Struct.js';

export interface ValidateJWTSVIDResponse {
  'spiffeId'?: (string);
  /**
   * Every claim of the token's payload.
   */
  'claims'?: (_google_protobuf_Struct | null);
}

export interface ValidateJWTSVIDResponse__Output {
  'spiffeId': (string);
  /**
   * Every claim of the token's payload.
   */
  'claims': (_google_protobuf_Struct__Output | null);
}
