// Original file: protos/svidkit/ca/v1/ca.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { BanAgentRequest as _svidkit_ca_v1_BanAgentRequest, BanAgentRequest__Output as _svidkit_ca_v1_BanAgentRequest__Output } from '../../../svidkit/ca/v1/BanAgentRequest.js';
import type { BanAgentResponse as _svidkit_ca_v1_BanAgentResponse, BanAgentResponse__Output as _svidkit_ca_v1_BanAgentResponse__Output } from '../../../svidkit/ca/v1/BanAgentResponse.js';
import type { CreateEntryRequest as _svidkit_ca_v1_CreateEntryRequest, CreateEntryRequest__Output as _svidkit_ca_v1_CreateEntryRequest__Output } from '../../../svidkit/ca/v1/CreateEntryRequest.js';
import type { CreateEntryResponse as _svidkit_ca_v1_CreateEntryResponse, CreateEntryResponse__Output as _svidkit_ca_v1_CreateEntryResponse__Output } from '../../../svidkit/ca/v1/CreateEntryResponse.js';
import type { CreateJoinTokenRequest as _svidkit_ca_v1_CreateJoinTokenRequest, CreateJoinTokenRequest__Output as _svidkit_ca_v1_CreateJoinTokenRequest__Output } from '../../../svidkit/ca/v1/CreateJoinTokenRequest.js';
import type { CreateJoinTokenResponse as _svidkit_ca_v1_CreateJoinTokenResponse, CreateJoinTokenResponse__Output as _svidkit_ca_v1_CreateJoinTokenResponse__Output } from '../../../svidkit/ca/v1/CreateJoinTokenResponse.js';
import type { DeleteEntryRequest as _svidkit_ca_v1_DeleteEntryRequest, DeleteEntryRequest__Output as _svidkit_ca_v1_DeleteEntryRequest__Output } from '../../../svidkit/ca/v1/DeleteEntryRequest.js';
import type { DeleteEntryResponse as _svidkit_ca_v1_DeleteEntryResponse, DeleteEntryResponse__Output as _svidkit_ca_v1_DeleteEntryResponse__Output } from '../../../svidkit/ca/v1/DeleteEntryResponse.js';
import type { GetCaStatusRequest as _svidkit_ca_v1_GetCaStatusRequest, GetCaStatusRequest__Output as _svidkit_ca_v1_GetCaStatusRequest__Output } from '../../../svidkit/ca/v1/GetCaStatusRequest.js';
import type { GetCaStatusResponse as _svidkit_ca_v1_GetCaStatusResponse, GetCaStatusResponse__Output as _svidkit_ca_v1_GetCaStatusResponse__Output } from '../../../svidkit/ca/v1/GetCaStatusResponse.js';
import type { ListAgentsRequest as _svidkit_ca_v1_ListAgentsRequest, ListAgentsRequest__Output as _svidkit_ca_v1_ListAgentsRequest__Output } from '../../../svidkit/ca/v1/ListAgentsRequest.js';
import type { ListAgentsResponse as _svidkit_ca_v1_ListAgentsResponse, ListAgentsResponse__Output as _svidkit_ca_v1_ListAgentsResponse__Output } from '../../../svidkit/ca/v1/ListAgentsResponse.js';
import type { ListEntriesRequest as _svidkit_ca_v1_ListEntriesRequest, ListEntriesRequest__Output as _svidkit_ca_v1_ListEntriesRequest__Output } from '../../../svidkit/ca/v1/ListEntriesRequest.js';
import type { ListEntriesResponse as _svidkit_ca_v1_ListEntriesResponse, ListEntriesResponse__Output as _svidkit_ca_v1_ListEntriesResponse__Output } from '../../../svidkit/ca/v1/ListEntriesResponse.js';
import type { RotateCaRequest as _svidkit_ca_v1_RotateCaRequest, RotateCaRequest__Output as _svidkit_ca_v1_RotateCaRequest__Output } from '../../../svidkit/ca/v1/RotateCaRequest.js';
import type { RotateCaResponse as _svidkit_ca_v1_RotateCaResponse, RotateCaResponse__Output as _svidkit_ca_v1_RotateCaResponse__Output } from '../../../svidkit/ca/v1/RotateCaResponse.js';
import type { TaintKeyRequest as _svidkit_ca_v1_TaintKeyRequest, TaintKeyRequest__Output as _svidkit_ca_v1_TaintKeyRequest__Output } from '../../../svidkit/ca/v1/TaintKeyRequest.js';
import type { TaintKeyResponse as _svidkit_ca_v1_TaintKeyResponse, TaintKeyResponse__Output as _svidkit_ca_v1_TaintKeyResponse__Output } from '../../../svidkit/ca/v1/TaintKeyResponse.js';

export interface AdminClient extends grpc.Client {
  BanAgent(argument: _svidkit_ca_v1_BanAgentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_BanAgentResponse__Output>): grpc.ClientUnaryCall;
  BanAgent(argument: _svidkit_ca_v1_BanAgentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_BanAgentResponse__Output>): grpc.ClientUnaryCall;
  BanAgent(argument: _svidkit_ca_v1_BanAgentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_BanAgentResponse__Output>): grpc.ClientUnaryCall;
  BanAgent(argument: _svidkit_ca_v1_BanAgentRequest, callback: grpc.requestCallback<_svidkit_ca_v1_BanAgentResponse__Output>): grpc.ClientUnaryCall;
  banAgent(argument: _svidkit_ca_v1_BanAgentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_BanAgentResponse__Output>): grpc.ClientUnaryCall;
  banAgent(argument: _svidkit_ca_v1_BanAgentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_BanAgentResponse__Output>): grpc.ClientUnaryCall;
  banAgent(argument: _svidkit_ca_v1_BanAgentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_BanAgentResponse__Output>): grpc.ClientUnaryCall;
  banAgent(argument: _svidkit_ca_v1_BanAgentRequest, callback: grpc.requestCallback<_svidkit_ca_v1_BanAgentResponse__Output>): grpc.ClientUnaryCall;
  
  CreateEntry(argument: _svidkit_ca_v1_CreateEntryRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_CreateEntryResponse__Output>): grpc.ClientUnaryCall;
  CreateEntry(argument: _svidkit_ca_v1_CreateEntryRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_CreateEntryResponse__Output>): grpc.ClientUnaryCall;
  CreateEntry(argument: _svidkit_ca_v1_CreateEntryRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_CreateEntryResponse__Output>): grpc.ClientUnaryCall;
  CreateEntry(argument: _svidkit_ca_v1_CreateEntryRequest, callback: grpc.requestCallback<_svidkit_ca_v1_CreateEntryResponse__Output>): grpc.ClientUnaryCall;
  createEntry(argument: _svidkit_ca_v1_CreateEntryRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_CreateEntryResponse__Output>): grpc.ClientUnaryCall;
  createEntry(argument: _svidkit_ca_v1_CreateEntryRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_CreateEntryResponse__Output>): grpc.ClientUnaryCall;
  createEntry(argument: _svidkit_ca_v1_CreateEntryRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_CreateEntryResponse__Output>): grpc.ClientUnaryCall;
  createEntry(argument: _svidkit_ca_v1_CreateEntryRequest, callback: grpc.requestCallback<_svidkit_ca_v1_CreateEntryResponse__Output>): grpc.ClientUnaryCall;
  
  CreateJoinToken(argument: _svidkit_ca_v1_CreateJoinTokenRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_CreateJoinTokenResponse__Output>): grpc.ClientUnaryCall;
  CreateJoinToken(argument: _svidkit_ca_v1_CreateJoinTokenRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_CreateJoinTokenResponse__Output>): grpc.ClientUnaryCall;
  CreateJoinToken(argument: _svidkit_ca_v1_CreateJoinTokenRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_CreateJoinTokenResponse__Output>): grpc.ClientUnaryCall;
  CreateJoinToken(argument: _svidkit_ca_v1_CreateJoinTokenRequest, callback: grpc.requestCallback<_svidkit_ca_v1_CreateJoinTokenResponse__Output>): grpc.ClientUnaryCall;
  createJoinToken(argument: _svidkit_ca_v1_CreateJoinTokenRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_CreateJoinTokenResponse__Output>): grpc.ClientUnaryCall;
  createJoinToken(argument: _svidkit_ca_v1_CreateJoinTokenRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_CreateJoinTokenResponse__Output>): grpc.ClientUnaryCall;
  createJoinToken(argument: _svidkit_ca_v1_CreateJoinTokenRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_CreateJoinTokenResponse__Output>): grpc.ClientUnaryCall;
  createJoinToken(argument: _svidkit_ca_v1_CreateJoinTokenRequest, callback: grpc.requestCallback<_svidkit_ca_v1_CreateJoinTokenResponse__Output>): grpc.ClientUnaryCall;
  
  DeleteEntry(argument: _svidkit_ca_v1_DeleteEntryRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_DeleteEntryResponse__Output>): grpc.ClientUnaryCall;
  DeleteEntry(argument: _svidkit_ca_v1_DeleteEntryRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_DeleteEntryResponse__Output>): grpc.ClientUnaryCall;
  DeleteEntry(argument: _svidkit_ca_v1_DeleteEntryRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_DeleteEntryResponse__Output>): grpc.ClientUnaryCall;
  DeleteEntry(argument: _svidkit_ca_v1_DeleteEntryRequest, callback: grpc.requestCallback<_svidkit_ca_v1_DeleteEntryResponse__Output>): grpc.ClientUnaryCall;
  deleteEntry(argument: _svidkit_ca_v1_DeleteEntryRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_DeleteEntryResponse__Output>): grpc.ClientUnaryCall;
  deleteEntry(argument: _svidkit_ca_v1_DeleteEntryRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_DeleteEntryResponse__Output>): grpc.ClientUnaryCall;
  deleteEntry(argument: _svidkit_ca_v1_DeleteEntryRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_DeleteEntryResponse__Output>): grpc.ClientUnaryCall;
  deleteEntry(argument: _svidkit_ca_v1_DeleteEntryRequest, callback: grpc.requestCallback<_svidkit_ca_v1_DeleteEntryResponse__Output>): grpc.ClientUnaryCall;
  
  GetCaStatus(argument: _svidkit_ca_v1_GetCaStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_GetCaStatusResponse__Output>): grpc.ClientUnaryCall;
  GetCaStatus(argument: _svidkit_ca_v1_GetCaStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_GetCaStatusResponse__Output>): grpc.ClientUnaryCall;
  GetCaStatus(argument: _svidkit_ca_v1_GetCaStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_GetCaStatusResponse__Output>): grpc.ClientUnaryCall;
  GetCaStatus(argument: _svidkit_ca_v1_GetCaStatusRequest, callback: grpc.requestCallback<_svidkit_ca_v1_GetCaStatusResponse__Output>): grpc.ClientUnaryCall;
  getCaStatus(argument: _svidkit_ca_v1_GetCaStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_GetCaStatusResponse__Output>): grpc.ClientUnaryCall;
  getCaStatus(argument: _svidkit_ca_v1_GetCaStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_GetCaStatusResponse__Output>): grpc.ClientUnaryCall;
  getCaStatus(argument: _svidkit_ca_v1_GetCaStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_GetCaStatusResponse__Output>): grpc.ClientUnaryCall;
  getCaStatus(argument: _svidkit_ca_v1_GetCaStatusRequest, callback: grpc.requestCallback<_svidkit_ca_v1_GetCaStatusResponse__Output>): grpc.ClientUnaryCall;
  
  ListAgents(argument: _svidkit_ca_v1_ListAgentsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  ListAgents(argument: _svidkit_ca_v1_ListAgentsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  ListAgents(argument: _svidkit_ca_v1_ListAgentsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  ListAgents(argument: _svidkit_ca_v1_ListAgentsRequest, callback: grpc.requestCallback<_svidkit_ca_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  listAgents(argument: _svidkit_ca_v1_ListAgentsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  listAgents(argument: _svidkit_ca_v1_ListAgentsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  listAgents(argument: _svidkit_ca_v1_ListAgentsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  listAgents(argument: _svidkit_ca_v1_ListAgentsRequest, callback: grpc.requestCallback<_svidkit_ca_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  
  ListEntries(argument: _svidkit_ca_v1_ListEntriesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_ListEntriesResponse__Output>): grpc.ClientUnaryCall;
  ListEntries(argument: _svidkit_ca_v1_ListEntriesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_ListEntriesResponse__Output>): grpc.ClientUnaryCall;
  ListEntries(argument: _svidkit_ca_v1_ListEntriesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_ListEntriesResponse__Output>): grpc.ClientUnaryCall;
  ListEntries(argument: _svidkit_ca_v1_ListEntriesRequest, callback: grpc.requestCallback<_svidkit_ca_v1_ListEntriesResponse__Output>): grpc.ClientUnaryCall;
  listEntries(argument: _svidkit_ca_v1_ListEntriesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_ListEntriesResponse__Output>): grpc.ClientUnaryCall;
  listEntries(argument: _svidkit_ca_v1_ListEntriesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_ListEntriesResponse__Output>): grpc.ClientUnaryCall;
  listEntries(argument: _svidkit_ca_v1_ListEntriesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_ListEntriesResponse__Output>): grpc.ClientUnaryCall;
  listEntries(argument: _svidkit_ca_v1_ListEntriesRequest, callback: grpc.requestCallback<_svidkit_ca_v1_ListEntriesResponse__Output>): grpc.ClientUnaryCall;
  
  RotateCa(argument: _svidkit_ca_v1_RotateCaRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_RotateCaResponse__Output>): grpc.ClientUnaryCall;
  RotateCa(argument: _svidkit_ca_v1_RotateCaRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_RotateCaResponse__Output>): grpc.ClientUnaryCall;
  RotateCa(argument: _svidkit_ca_v1_RotateCaRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_RotateCaResponse__Output>): grpc.ClientUnaryCall;
  RotateCa(argument: _svidkit_ca_v1_RotateCaRequest, callback: grpc.requestCallback<_svidkit_ca_v1_RotateCaResponse__Output>): grpc.ClientUnaryCall;
  rotateCa(argument: _svidkit_ca_v1_RotateCaRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_RotateCaResponse__Output>): grpc.ClientUnaryCall;
  rotateCa(argument: _svidkit_ca_v1_RotateCaRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_RotateCaResponse__Output>): grpc.ClientUnaryCall;
  rotateCa(argument: _svidkit_ca_v1_RotateCaRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_RotateCaResponse__Output>): grpc.ClientUnaryCall;
  rotateCa(argument: _svidkit_ca_v1_RotateCaRequest, callback: grpc.requestCallback<_svidkit_ca_v1_RotateCaResponse__Output>): grpc.ClientUnaryCall;
  
  TaintKey(argument: _svidkit_ca_v1_TaintKeyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_TaintKeyResponse__Output>): grpc.ClientUnaryCall;
  TaintKey(argument: _svidkit_ca_v1_TaintKeyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_TaintKeyResponse__Output>): grpc.ClientUnaryCall;
  TaintKey(argument: _svidkit_ca_v1_TaintKeyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_TaintKeyResponse__Output>): grpc.ClientUnaryCall;
  TaintKey(argument: _svidkit_ca_v1_TaintKeyRequest, callback: grpc.requestCallback<_svidkit_ca_v1_TaintKeyResponse__Output>): grpc.ClientUnaryCall;
  taintKey(argument: _svidkit_ca_v1_TaintKeyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_TaintKeyResponse__Output>): grpc.ClientUnaryCall;
  taintKey(argument: _svidkit_ca_v1_TaintKeyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_svidkit_ca_v1_TaintKeyResponse__Output>): grpc.ClientUnaryCall;
  taintKey(argument: _svidkit_ca_v1_TaintKeyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_svidkit_ca_v1_TaintKeyResponse__Output>): grpc.ClientUnaryCall;
  taintKey(argument: _svidkit_ca_v1_TaintKeyRequest, callback: grpc.requestCallback<_svidkit_ca_v1_TaintKeyResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface AdminHandlers extends grpc.UntypedServiceImplementation {
  BanAgent: grpc.handleUnaryCall<_svidkit_ca_v1_BanAgentRequest__Output, _svidkit_ca_v1_BanAgentResponse>;
  
  CreateEntry: grpc.handleUnaryCall<_svidkit_ca_v1_CreateEntryRequest__Output, _svidkit_ca_v1_CreateEntryResponse>;
  
  CreateJoinToken: grpc.handleUnaryCall<_svidkit_ca_v1_CreateJoinTokenRequest__Output, _svidkit_ca_v1_CreateJoinTokenResponse>;
  
  DeleteEntry: grpc.handleUnaryCall<_svidkit_ca_v1_DeleteEntryRequest__Output, _svidkit_ca_v1_DeleteEntryResponse>;
  
  GetCaStatus: grpc.handleUnaryCall<_svidkit_ca_v1_GetCaStatusRequest__Output, _svidkit_ca_v1_GetCaStatusResponse>;
  
  ListAgents: grpc.handleUnaryCall<_svidkit_ca_v1_ListAgentsRequest__Output, _svidkit_ca_v1_ListAgentsResponse>;
  
  ListEntries: grpc.handleUnaryCall<_svidkit_ca_v1_ListEntriesRequest__Output, _svidkit_ca_v1_ListEntriesResponse>;
  
  RotateCa: grpc.handleUnaryCall<_svidkit_ca_v1_RotateCaRequest__Output, _svidkit_ca_v1_RotateCaResponse>;
  
  TaintKey: grpc.handleUnaryCall<_svidkit_ca_v1_TaintKeyRequest__Output, _svidkit_ca_v1_TaintKeyResponse>;
  
}

export interface AdminDefinition extends grpc.ServiceDefinition {
  BanAgent: MethodDefinition<_svidkit_ca_v1_BanAgentRequest, _svidkit_ca_v1_BanAgentResponse, _svidkit_ca_v1_BanAgentRequest__Output, _svidkit_ca_v1_BanAgentResponse__Output>
  CreateEntry: MethodDefinition<_svidkit_ca_v1_CreateEntryRequest, _svidkit_ca_v1_CreateEntryResponse, _svidkit_ca_v1_CreateEntryRequest__Output, _svidkit_ca_v1_CreateEntryResponse__Output>
  CreateJoinToken: MethodDefinition<_svidkit_ca_v1_CreateJoinTokenRequest, _svidkit_ca_v1_CreateJoinTokenResponse, _svidkit_ca_v1_CreateJoinTokenRequest__Output, _svidkit_ca_v1_CreateJoinTokenResponse__Output>
  DeleteEntry: MethodDefinition<_svidkit_ca_v1_DeleteEntryRequest, _svidkit_ca_v1_DeleteEntryResponse, _svidkit_ca_v1_DeleteEntryRequest__Output, _svidkit_ca_v1_DeleteEntryResponse__Output>
  GetCaStatus: MethodDefinition<_svidkit_ca_v1_GetCaStatusRequest, _svidkit_ca_v1_GetCaStatusResponse, _svidkit_ca_v1_GetCaStatusRequest__Output, _svidkit_ca_v1_GetCaStatusResponse__Output>
  ListAgents: MethodDefinition<_svidkit_ca_v1_ListAgentsRequest, _svidkit_ca_v1_ListAgentsResponse, _svidkit_ca_v1_ListAgentsRequest__Output, _svidkit_ca_v1_ListAgentsResponse__Output>
  ListEntries: MethodDefinition<_svidkit_ca_v1_ListEntriesRequest, _svidkit_ca_v1_ListEntriesResponse, _svidkit_ca_v1_ListEntriesRequest__Output, _svidkit_ca_v1_ListEntriesResponse__Output>
  RotateCa: MethodDefinition<_svidkit_ca_v1_RotateCaRequest, _svidkit_ca_v1_RotateCaResponse, _svidkit_ca_v1_RotateCaRequest__Output, _svidkit_ca_v1_RotateCaResponse__Output>
  TaintKey: MethodDefinition<_svidkit_ca_v1_TaintKeyRequest, _svidkit_ca_v1_TaintKeyResponse, _svidkit_ca_v1_TaintKeyRequest__Output, _svidkit_ca_v1_TaintKeyResponse__Output>
}
