// Original file: protos/svidkit/ca/v1/ca.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AttestAgentRequest as _svidkit_ca_v1_AttestAgentRequest, AttestAgentRequest__Output as _svidkit_ca_v1_AttestAgentRequest__Output } from '../../../svidkit/ca/v1/AttestAgentRequest.js';
import type { AttestAgentResponse as _svidkit_ca_v1_AttestAgentResponse, AttestAgentResponse__Output as _svidkit_ca_v1_AttestAgentResponse__Output } from '../../../svidkit/ca/v1/AttestAgentResponse.js';
import type { BatchNewX509SvidRequest as _svidkit_ca_v1_BatchNewX509SvidRequest, BatchNewX509SvidRequest__Output as _svidkit_ca_v1_BatchNewX509SvidRequest__Output } from '../../../svidkit/ca/v1/BatchNewX509SvidRequest.js';
import type { BatchNewX509SvidResponse as _svidkit_ca_v1_BatchNewX509SvidResponse, BatchNewX509SvidResponse__Output as _svidkit_ca_v1_BatchNewX509SvidResponse__Output } from '../../../svidkit/ca/v1/BatchNewX509SvidResponse.js';
import type { Bundle as _svidkit_ca_v1_Bundle, Bundle__Output as _svidkit_ca_v1_Bundle__Output } from '../../../svidkit/ca/v1/Bundle.js';
import type { ListAuthorizedEntriesRequest as _svidkit_ca_v1_ListAuthorizedEntriesRequest, ListAuthorizedEntriesRequest__Output as _svidkit_ca_v1_ListAuthorizedEntriesRequest__Output } from '../../../svidkit/ca/v1/ListAuthorizedEntriesRequest.js';
import type { ListAuthorizedEntriesResponse as _svidkit_ca_v1_ListAuthorizedEntriesResponse, ListAuthorizedEntriesResponse__Output as _svidkit_ca_v1_ListAuthorizedEntriesResponse__Output } from '../../../svidkit/ca/v1/ListAuthorizedEntriesResponse.js';
import type { NewJwtSvidRequest as _svidkit_ca_v1_NewJwtSvidRequest, NewJwtSvidRequest__Output as _svidkit_ca_v1_NewJwtSvidRequest__Output } from '../../../svidkit/ca/v1/NewJwtSvidRequest.js';
import type { NewJwtSvidResponse as _svidkit_ca_v1_NewJwtSvidResponse, NewJwtSvidResponse__Output as _svidkit_ca_v1_NewJwtSvidResponse__Output } from '../../../svidkit/ca/v1/NewJwtSvidResponse.js';
import type { RenewAgentRequest as _svidkit_ca_v1_RenewAgentRequest, RenewAgentRequest__Output as _svidkit_ca_v1_RenewAgentRequest__Output } from '../../../svidkit/ca/v1/RenewAgentRequest.js';
import type { RenewAgentResponse as _svidkit_ca_v1_RenewAgentResponse, RenewAgentResponse__Output as _svidkit_ca_v1_RenewAgentResponse__Output } from '../../../svidkit/ca/v1/RenewAgentResponse.js';
import type { WatchBundleRequest as _svidkit_ca_v1_WatchBundleRequest, WatchBundleRequest__Output as _svidkit_ca_v1_WatchBundleRequest__Output } from '../../../svidkit/ca/v1/WatchBundleRequest.js';

export interface NodeClient extends grpc.Client {
  AttestAgent(argument: _svidkit_ca_v1_AttestAgentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_AttestAgentResponse__Output>): grpc.ClientUnaryCall;
  AttestAgent(argument: _svidkit_ca_v1_AttestAgentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_AttestAgentResponse__Output>): grpc.ClientUnaryCall;
  AttestAgent(argument: _svidkit_ca_v1_AttestAgentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_AttestAgentResponse__Output>): grpc.ClientUnaryCall;
  AttestAgent(argument: _svidkit_ca_v1_AttestAgentRequest, callback: grpc.requestCallback<_svidkit_ca_v1_AttestAgentResponse__Output>): grpc.ClientUnaryCall;
  attestAgent(argument: _svidkit_ca_v1_AttestAgentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_AttestAgentResponse__Output>): grpc.ClientUnaryCall;
  attestAgent(argument: _svidkit_ca_v1_AttestAgentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_AttestAgentResponse__Output>): grpc.ClientUnaryCall;
  attestAgent(argument: _svidkit_ca_v1_AttestAgentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_AttestAgentResponse__Output>): grpc.ClientUnaryCall;
  attestAgent(argument: _svidkit_ca_v1_AttestAgentRequest, callback: grpc.requestCallback<_svidkit_ca_v1_AttestAgentResponse__Output>): grpc.ClientUnaryCall;
  
  BatchNewX509Svid(argument: _svidkit_ca_v1_BatchNewX509SvidRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_BatchNewX509SvidResponse__Output>): grpc.ClientUnaryCall;
  BatchNewX509Svid(argument: _svidkit_ca_v1_BatchNewX509SvidRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_BatchNewX509SvidResponse__Output>): grpc.ClientUnaryCall;
  BatchNewX509Svid(argument: _svidkit_ca_v1_BatchNewX509SvidRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_BatchNewX509SvidResponse__Output>): grpc.ClientUnaryCall;
  BatchNewX509Svid(argument: _svidkit_ca_v1_BatchNewX509SvidRequest, callback: grpc.requestCallback<_svidkit_ca_v1_BatchNewX509SvidResponse__Output>): grpc.ClientUnaryCall;
  batchNewX509Svid(argument: _svidkit_ca_v1_BatchNewX509SvidRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_BatchNewX509SvidResponse__Output>): grpc.ClientUnaryCall;
  batchNewX509Svid(argument: _svidkit_ca_v1_BatchNewX509SvidRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_BatchNewX509SvidResponse__Output>): grpc.ClientUnaryCall;
  batchNewX509Svid(argument: _svidkit_ca_v1_BatchNewX509SvidRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_BatchNewX509SvidResponse__Output>): grpc.ClientUnaryCall;
  batchNewX509Svid(argument: _svidkit_ca_v1_BatchNewX509SvidRequest, callback: grpc.requestCallback<_svidkit_ca_v1_BatchNewX509SvidResponse__Output>): grpc.ClientUnaryCall;
  
  ListAuthorizedEntries(argument: _svidkit_ca_v1_ListAuthorizedEntriesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_ListAuthorizedEntriesResponse__Output>): grpc.ClientUnaryCall;
  ListAuthorizedEntries(argument: _svidkit_ca_v1_ListAuthorizedEntriesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_ListAuthorizedEntriesResponse__Output>): grpc.ClientUnaryCall;
  ListAuthorizedEntries(argument: _svidkit_ca_v1_ListAuthorizedEntriesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_ListAuthorizedEntriesResponse__Output>): grpc.ClientUnaryCall;
  ListAuthorizedEntries(argument: _svidkit_ca_v1_ListAuthorizedEntriesRequest, callback: grpc.requestCallback<_svidkit_ca_v1_ListAuthorizedEntriesResponse__Output>): grpc.ClientUnaryCall;
  listAuthorizedEntries(argument: _svidkit_ca_v1_ListAuthorizedEntriesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_ListAuthorizedEntriesResponse__Output>): grpc.ClientUnaryCall;
  listAuthorizedEntries(argument: _svidkit_ca_v1_ListAuthorizedEntriesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_ListAuthorizedEntriesResponse__Output>): grpc.ClientUnaryCall;
  listAuthorizedEntries(argument: _svidkit_ca_v1_ListAuthorizedEntriesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_ListAuthorizedEntriesResponse__Output>): grpc.ClientUnaryCall;
  listAuthorizedEntries(argument: _svidkit_ca_v1_ListAuthorizedEntriesRequest, callback: grpc.requestCallback<_svidkit_ca_v1_ListAuthorizedEntriesResponse__Output>): grpc.ClientUnaryCall;
  
  NewJwtSvid(argument: _svidkit_ca_v1_NewJwtSvidRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_NewJwtSvidResponse__Output>): grpc.ClientUnaryCall;
  NewJwtSvid(argument: _svidkit_ca_v1_NewJwtSvidRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_NewJwtSvidResponse__Output>): grpc.ClientUnaryCall;
  NewJwtSvid(argument: _svidkit_ca_v1_NewJwtSvidRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_NewJwtSvidResponse__Output>): grpc.ClientUnaryCall;
  NewJwtSvid(argument: _svidkit_ca_v1_NewJwtSvidRequest, callback: grpc.requestCallback<_svidkit_ca_v1_NewJwtSvidResponse__Output>): grpc.ClientUnaryCall;
  newJwtSvid(argument: _svidkit_ca_v1_NewJwtSvidRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_NewJwtSvidResponse__Output>): grpc.ClientUnaryCall;
  newJwtSvid(argument: _svidkit_ca_v1_NewJwtSvidRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_NewJwtSvidResponse__Output>): grpc.ClientUnaryCall;
  newJwtSvid(argument: _svidkit_ca_v1_NewJwtSvidRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_NewJwtSvidResponse__Output>): grpc.ClientUnaryCall;
  newJwtSvid(argument: _svidkit_ca_v1_NewJwtSvidRequest, callback: grpc.requestCallback<_svidkit_ca_v1_NewJwtSvidResponse__Output>): grpc.ClientUnaryCall;
  
  RenewAgent(argument: _svidkit_ca_v1_RenewAgentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_RenewAgentResponse__Output>): grpc.ClientUnaryCall;
  RenewAgent(argument: _svidkit_ca_v1_RenewAgentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_RenewAgentResponse__Output>): grpc.ClientUnaryCall;
  RenewAgent(argument: _svidkit_ca_v1_RenewAgentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_RenewAgentResponse__Output>): grpc.ClientUnaryCall;
  RenewAgent(argument: _svidkit_ca_v1_RenewAgentRequest, callback: grpc.requestCallback<_svidkit_ca_v1_RenewAgentResponse__Output>): grpc.ClientUnaryCall;
  renewAgent(argument: _svidkit_ca_v1_RenewAgentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_RenewAgentResponse__Output>): grpc.ClientUnaryCall;
  renewAgent(argument: _svidkit_ca_v1_RenewAgentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_RenewAgentResponse__Output>): grpc.ClientUnaryCall;
  renewAgent(argument: _svidkit_ca_v1_RenewAgentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_RenewAgentResponse__Output>): grpc.ClientUnaryCall;
  renewAgent(argument: _svidkit_ca_v1_RenewAgentRequest, callback: grpc.requestCallback<_svidkit_ca_v1_RenewAgentResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Sends the full bundle at once, then again on every change.
   */
  WatchBundle(argument: _svidkit_ca_v1_WatchBundleRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_svidkit_ca_v1_Bundle__Output>;
  WatchBundle(argument: _svidkit_ca_v1_WatchBundleRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_svidkit_ca_v1_Bundle__Output>;
  /**
   * Sends the full bundle at once, then again on every change.
   */
  watchBundle(argument: _svidkit_ca_v1_WatchBundleRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_svidkit_ca_v1_Bundle__Output>;
  watchBundle(argument: _svidkit_ca_v1_WatchBundleRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_svidkit_ca_v1_Bundle__Output>;
  
}

export interface NodeHandlers extends grpc.UntypedServiceImplementation {
  AttestAgent: grpc.handleUnaryCall<_svidkit_ca_v1_AttestAgentRequest__Output, _svidkit_ca_v1_AttestAgentResponse>;
  
  BatchNewX509Svid: grpc.handleUnaryCall<_svidkit_ca_v1_BatchNewX509SvidRequest__Output, _svidkit_ca_v1_BatchNewX509SvidResponse>;
  
  ListAuthorizedEntries: grpc.handleUnaryCall<_svidkit_ca_v1_ListAuthorizedEntriesRequest__Output, _svidkit_ca_v1_ListAuthorizedEntriesResponse>;
  
  NewJwtSvid: grpc.handleUnaryCall<_svidkit_ca_v1_NewJwtSvidRequest__Output, _svidkit_ca_v1_NewJwtSvidResponse>;
  
  RenewAgent: grpc.handleUnaryCall<_svidkit_ca_v1_RenewAgentRequest__Output, _svidkit_ca_v1_RenewAgentResponse>;
  
  /**
   * Sends the full bundle at once, then again on every change.
   */
  WatchBundle: grpc.handleServerStreamingCall<_svidkit_ca_v1_WatchBundleRequest__Output, _svidkit_ca_v1_Bundle>;
  
}

export interface NodeDefinition extends grpc.ServiceDefinition {
  AttestAgent: MethodDefinition<_svidkit_ca_v1_AttestAgentRequest, _svidkit_ca_v1_AttestAgentResponse, _svidkit_ca_v1_AttestAgentRequest__Output, _svidkit_ca_v1_AttestAgentResponse__Output>
  BatchNewX509Svid: MethodDefinition<_svidkit_ca_v1_BatchNewX509SvidRequest, _svidkit_ca_v1_BatchNewX509SvidResponse, _svidkit_ca_v1_BatchNewX509SvidRequest__Output, _svidkit_ca_v1_BatchNewX509SvidResponse__Output>
  ListAuthorizedEntries: MethodDefinition<_svidkit_ca_v1_ListAuthorizedEntriesRequest, _svidkit_ca_v1_ListAuthorizedEntriesResponse, _svidkit_ca_v1_ListAuthorizedEntriesRequest__Output, _svidkit_ca_v1_ListAuthorizedEntriesResponse__Output>
  NewJwtSvid: MethodDefinition<_svidkit_ca_v1_NewJwtSvidRequest, _svidkit_ca_v1_NewJwtSvidResponse, _svidkit_ca_v1_NewJwtSvidRequest__Output, _svidkit_ca_v1_NewJwtSvidResponse__Output>
  RenewAgent: MethodDefinition<_svidkit_ca_v1_RenewAgentRequest, _svidkit_ca_v1_RenewAgentResponse, _svidkit_ca_v1_RenewAgentRequest__Output, _svidkit_ca_v1_RenewAgentResponse__Output>
  WatchBundle: MethodDefinition<_svidkit_ca_v1_WatchBundleRequest, _svidkit_ca_v1_Bundle, _svidkit_ca_v1_WatchBundleRequest__Output, _svidkit_ca_v1_Bundle__Output>
}
