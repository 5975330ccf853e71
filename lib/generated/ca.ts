import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { AdminClient as _svidkit_ca_v1_AdminClient, AdminDefinition as _svidkit_ca_v1_AdminDefinition } from './svidkit/ca/v1/Admin.js';
import type { Agent as _svidkit_ca_v1_Agent, Agent__Output as _svidkit_ca_v1_Agent__Output } from './svidkit/ca/v1/Agent.js';
import type { AttestAgentRequest as _svidkit_ca_v1_AttestAgentRequest, AttestAgentRequest__Output as _svidkit_ca_v1_AttestAgentRequest__Output } from './svidkit/ca/v1/AttestAgentRequest.js';
import type { AttestAgentResponse as _svidkit_ca_v1_AttestAgentResponse, AttestAgentResponse__Output as _svidkit_ca_v1_AttestAgentResponse__Output } from './svidkit/ca/v1/AttestAgentResponse.js';
import type { BanAgentRequest as _svidkit_ca_v1_BanAgentRequest, BanAgentRequest__Output as _svidkit_ca_v1_BanAgentRequest__Output } from './svidkit/ca/v1/BanAgentRequest.js';
import type { BanAgentResponse as _svidkit_ca_v1_BanAgentResponse, BanAgentResponse__Output as _svidkit_ca_v1_BanAgentResponse__Output } from './svidkit/ca/v1/BanAgentResponse.js';
import type { BatchNewX509SvidRequest as _svidkit_ca_v1_BatchNewX509SvidRequest, BatchNewX509SvidRequest__Output as _svidkit_ca_v1_BatchNewX509SvidRequest__Output } from './svidkit/ca/v1/BatchNewX509SvidRequest.js';
import type { BatchNewX509SvidResponse as _svidkit_ca_v1_BatchNewX509SvidResponse, BatchNewX509SvidResponse__Output as _svidkit_ca_v1_BatchNewX509SvidResponse__Output } from './svidkit/ca/v1/BatchNewX509SvidResponse.js';
import type { BatchNewX509SvidResult as _svidkit_ca_v1_BatchNewX509SvidResult, BatchNewX509SvidResult__Output as _svidkit_ca_v1_BatchNewX509SvidResult__Output } from './svidkit/ca/v1/BatchNewX509SvidResult.js';
import type { Bundle as _svidkit_ca_v1_Bundle, Bundle__Output as _svidkit_ca_v1_Bundle__Output } from './svidkit/ca/v1/Bundle.js';
import type { CaKey as _svidkit_ca_v1_CaKey, CaKey__Output as _svidkit_ca_v1_CaKey__Output } from './svidkit/ca/v1/CaKey.js';
import type { CreateEntryRequest as _svidkit_ca_v1_CreateEntryRequest, CreateEntryRequest__Output as _svidkit_ca_v1_CreateEntryRequest__Output } from './svidkit/ca/v1/CreateEntryRequest.js';
import type { CreateEntryResponse as _svidkit_ca_v1_CreateEntryResponse, CreateEntryResponse__Output as _svidkit_ca_v1_CreateEntryResponse__Output } from './svidkit/ca/v1/CreateEntryResponse.js';
import type { CreateJoinTokenRequest as _svidkit_ca_v1_CreateJoinTokenRequest, CreateJoinTokenRequest__Output as _svidkit_ca_v1_CreateJoinTokenRequest__Output } from './svidkit/ca/v1/CreateJoinTokenRequest.js';
import type { CreateJoinTokenResponse as _svidkit_ca_v1_CreateJoinTokenResponse, CreateJoinTokenResponse__Output as _svidkit_ca_v1_CreateJoinTokenResponse__Output } from './svidkit/ca/v1/CreateJoinTokenResponse.js';
import type { DeleteEntryRequest as _svidkit_ca_v1_DeleteEntryRequest, DeleteEntryRequest__Output as _svidkit_ca_v1_DeleteEntryRequest__Output } from './svidkit/ca/v1/DeleteEntryRequest.js';
import type { DeleteEntryResponse as _svidkit_ca_v1_DeleteEntryResponse, DeleteEntryResponse__Output as _svidkit_ca_v1_DeleteEntryResponse__Output } from './svidkit/ca/v1/DeleteEntryResponse.js';
import type { GetCaStatusRequest as _svidkit_ca_v1_GetCaStatusRequest, GetCaStatusRequest__Output as _svidkit_ca_v1_GetCaStatusRequest__Output } from './svidkit/ca/v1/GetCaStatusRequest.js';
import type { GetCaStatusResponse as _svidkit_ca_v1_GetCaStatusResponse, GetCaStatusResponse__Output as _svidkit_ca_v1_GetCaStatusResponse__Output } from './svidkit/ca/v1/GetCaStatusResponse.js';
import type { JoinTokenCredential as _svidkit_ca_v1_JoinTokenCredential, JoinTokenCredential__Output as _svidkit_ca_v1_JoinTokenCredential__Output } from './svidkit/ca/v1/JoinTokenCredential.js';
import type { K8sPsatCredential as _svidkit_ca_v1_K8sPsatCredential, K8sPsatCredential__Output as _svidkit_ca_v1_K8sPsatCredential__Output } from './svidkit/ca/v1/K8sPsatCredential.js';
import type { ListAgentsRequest as _svidkit_ca_v1_ListAgentsRequest, ListAgentsRequest__Output as _svidkit_ca_v1_ListAgentsRequest__Output } from './svidkit/ca/v1/ListAgentsRequest.js';
import type { ListAgentsResponse as _svidkit_ca_v1_ListAgentsResponse, ListAgentsResponse__Output as _svidkit_ca_v1_ListAgentsResponse__Output } from './svidkit/ca/v1/ListAgentsResponse.js';
import type { ListAuthorizedEntriesRequest as _svidkit_ca_v1_ListAuthorizedEntriesRequest, ListAuthorizedEntriesRequest__Output as _svidkit_ca_v1_ListAuthorizedEntriesRequest__Output } from './svidkit/ca/v1/ListAuthorizedEntriesRequest.js';
import type { ListAuthorizedEntriesResponse as _svidkit_ca_v1_ListAuthorizedEntriesResponse, ListAuthorizedEntriesResponse__Output as _svidkit_ca_v1_ListAuthorizedEntriesResponse__Output } from './svidkit/ca/v1/ListAuthorizedEntriesResponse.js';
import type { ListEntriesRequest as _svidkit_ca_v1_ListEntriesRequest, ListEntriesRequest__Output as _svidkit_ca_v1_ListEntriesRequest__Output } from './svidkit/ca/v1/ListEntriesRequest.js';
import type { ListEntriesResponse as _svidkit_ca_v1_ListEntriesResponse, ListEntriesResponse__Output as _svidkit_ca_v1_ListEntriesResponse__Output } from './svidkit/ca/v1/ListEntriesResponse.js';
import type { NewJwtSvidRequest as _svidkit_ca_v1_NewJwtSvidRequest, NewJwtSvidRequest__Output as _svidkit_ca_v1_NewJwtSvidRequest__Output } from './svidkit/ca/v1/NewJwtSvidRequest.js';
import type { NewJwtSvidResponse as _svidkit_ca_v1_NewJwtSvidResponse, NewJwtSvidResponse__Output as _svidkit_ca_v1_NewJwtSvidResponse__Output } from './svidkit/ca/v1/NewJwtSvidResponse.js';
import type { NewX509SvidParams as _svidkit_ca_v1_NewX509SvidParams, NewX509SvidParams__Output as _svidkit_ca_v1_NewX509SvidParams__Output } from './svidkit/ca/v1/NewX509SvidParams.js';
import type { NodeClient as _svidkit_ca_v1_NodeClient, NodeDefinition as _svidkit_ca_v1_NodeDefinition } from './svidkit/ca/v1/Node.js';
import type { RegistrationEntry as _svidkit_ca_v1_RegistrationEntry, RegistrationEntry__Output as _svidkit_ca_v1_RegistrationEntry__Output } from './svidkit/ca/v1/RegistrationEntry.js';
import type { RenewAgentRequest as _svidkit_ca_v1_RenewAgentRequest, RenewAgentRequest__Output as _svidkit_ca_v1_RenewAgentRequest__Output } from './svidkit/ca/v1/RenewAgentRequest.js';
import type { RenewAgentResponse as _svidkit_ca_v1_RenewAgentResponse, RenewAgentResponse__Output as _svidkit_ca_v1_RenewAgentResponse__Output } from './svidkit/ca/v1/RenewAgentResponse.js';
import type { RotateCaRequest as _svidkit_ca_v1_RotateCaRequest, RotateCaRequest__Output as _svidkit_ca_v1_RotateCaRequest__Output } from './svidkit/ca/v1/RotateCaRequest.js';
import type { RotateCaResponse as _svidkit_ca_v1_RotateCaResponse, RotateCaResponse__Output as _svidkit_ca_v1_RotateCaResponse__Output } from './svidkit/ca/v1/RotateCaResponse.js';
import type { TaintKeyRequest as _svidkit_ca_v1_TaintKeyRequest, TaintKeyRequest__Output as _svidkit_ca_v1_TaintKeyRequest__Output } from './svidkit/ca/v1/TaintKeyRequest.js';
import type { TaintKeyResponse as _svidkit_ca_v1_TaintKeyResponse, TaintKeyResponse__Output as _svidkit_ca_v1_TaintKeyResponse__Output } from './svidkit/ca/v1/TaintKeyResponse.js';
import type { WatchBundleRequest as _svidkit_ca_v1_WatchBundleRequest, WatchBundleRequest__Output as _svidkit_ca_v1_WatchBundleRequest__Output } from './svidkit/ca/v1/WatchBundleRequest.js';
import type { X509Svid as _svidkit_ca_v1_X509Svid, X509Svid__Output as _svidkit_ca_v1_X509Svid__Output } from './svidkit/ca/v1/X509Svid.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  svidkit: {
    ca: {
      v1: {
        Admin: SubtypeConstructor<typeof grpc.Client, _svidkit_ca_v1_AdminClient> & { service: _svidkit_ca_v1_AdminDefinition }
        Agent: MessageTypeDefinition<_svidkit_ca_v1_Agent, _svidkit_ca_v1_Agent__Output>
        AttestAgentRequest: MessageTypeDefinition<_svidkit_ca_v1_AttestAgentRequest, _svidkit_ca_v1_AttestAgentRequest__Output>
        AttestAgentResponse: MessageTypeDefinition<_svidkit_ca_v1_AttestAgentResponse, _svidkit_ca_v1_AttestAgentResponse__Output>
        BanAgentRequest: MessageTypeDefinition<_svidkit_ca_v1_BanAgentRequest, _svidkit_ca_v1_BanAgentRequest__Output>
        BanAgentResponse: MessageTypeDefinition<_svidkit_ca_v1_BanAgentResponse, _svidkit_ca_v1_BanAgentResponse__Output>
        BatchNewX509SvidRequest: MessageTypeDefinition<_svidkit_ca_v1_BatchNewX509SvidRequest, _svidkit_ca_v1_BatchNewX509SvidRequest__Output>
        BatchNewX509SvidResponse: MessageTypeDefinition<_svidkit_ca_v1_BatchNewX509SvidResponse, _svidkit_ca_v1_BatchNewX509SvidResponse__Output>
        BatchNewX509SvidResult: MessageTypeDefinition<_svidkit_ca_v1_BatchNewX509SvidResult, _svidkit_ca_v1_BatchNewX509SvidResult__Output>
        Bundle: MessageTypeDefinition<_svidkit_ca_v1_Bundle, _svidkit_ca_v1_Bundle__Output>
        CaKey: MessageTypeDefinition<_svidkit_ca_v1_CaKey, _svidkit_ca_v1_CaKey__Output>
        CreateEntryRequest: MessageTypeDefinition<_svidkit_ca_v1_CreateEntryRequest, _svidkit_ca_v1_CreateEntryRequest__Output>
        CreateEntryResponse: MessageTypeDefinition<_svidkit_ca_v1_CreateEntryResponse, _svidkit_ca_v1_CreateEntryResponse__Output>
        CreateJoinTokenRequest: MessageTypeDefinition<_svidkit_ca_v1_CreateJoinTokenRequest, _svidkit_ca_v1_CreateJoinTokenRequest__Output>
        CreateJoinTokenResponse: MessageTypeDefinition<_svidkit_ca_v1_CreateJoinTokenResponse, _svidkit_ca_v1_CreateJoinTokenResponse__Output>
        DeleteEntryRequest: MessageTypeDefinition<_svidkit_ca_v1_DeleteEntryRequest, _svidkit_ca_v1_DeleteEntryRequest__Output>
        DeleteEntryResponse: MessageTypeDefinition<_svidkit_ca_v1_DeleteEntryResponse, _svidkit_ca_v1_DeleteEntryResponse__Output>
        GetCaStatusRequest: MessageTypeDefinition<_svidkit_ca_v1_GetCaStatusRequest, _svidkit_ca_v1_GetCaStatusRequest__Output>
        GetCaStatusResponse: MessageTypeDefinition<_svidkit_ca_v1_GetCaStatusResponse, _svidkit_ca_v1_GetCaStatusResponse__Output>
        JoinTokenCredential: MessageTypeDefinition<_svidkit_ca_v1_JoinTokenCredential, _svidkit_ca_v1_JoinTokenCredential__Output>
        K8sPsatCredential: MessageTypeDefinition<_svidkit_ca_v1_K8sPsatCredential, _svidkit_ca_v1_K8sPsatCredential__Output>
        ListAgentsRequest: MessageTypeDefinition<_svidkit_ca_v1_ListAgentsRequest, _svidkit_ca_v1_ListAgentsRequest__Output>
        ListAgentsResponse: MessageTypeDefinition<_svidkit_ca_v1_ListAgentsResponse, _svidkit_ca_v1_ListAgentsResponse__Output>
        ListAuthorizedEntriesRequest: MessageTypeDefinition<_svidkit_ca_v1_ListAuthorizedEntriesRequest, _svidkit_ca_v1_ListAuthorizedEntriesRequest__Output>
        ListAuthorizedEntriesResponse: MessageTypeDefinition<_svidkit_ca_v1_ListAuthorizedEntriesResponse, _svidkit_ca_v1_ListAuthorizedEntriesResponse__Output>
        ListEntriesRequest: MessageTypeDefinition<_svidkit_ca_v1_ListEntriesRequest, _svidkit_ca_v1_ListEntriesRequest__Output>
        ListEntriesResponse: MessageTypeDefinition<_svidkit_ca_v1_ListEntriesResponse, _svidkit_ca_v1_ListEntriesResponse__Output>
        NewJwtSvidRequest: MessageTypeDefinition<_svidkit_ca_v1_NewJwtSvidRequest, _svidkit_ca_v1_NewJwtSvidRequest__Output>
        NewJwtSvidResponse: MessageTypeDefinition<_svidkit_ca_v1_NewJwtSvidResponse, _svidkit_ca_v1_NewJwtSvidResponse__Output>
        NewX509SvidParams: MessageTypeDefinition<_svidkit_ca_v1_NewX509SvidParams, _svidkit_ca_v1_NewX509SvidParams__Output>
        Node: SubtypeConstructor<typeof grpc.Client, _svidkit_ca_v1_NodeClient> & { service: _svidkit_ca_v1_NodeDefinition }
        RegistrationEntry: MessageTypeDefinition<_svidkit_ca_v1_RegistrationEntry, _svidkit_ca_v1_RegistrationEntry__Output>
        RenewAgentRequest: MessageTypeDefinition<_svidkit_ca_v1_RenewAgentRequest, _svidkit_ca_v1_RenewAgentRequest__Output>
        RenewAgentResponse: MessageTypeDefinition<_svidkit_ca_v1_RenewAgentResponse, _svidkit_ca_v1_RenewAgentResponse__Output>
        RotateCaRequest: MessageTypeDefinition<_svidkit_ca_v1_RotateCaRequest, _svidkit_ca_v1_RotateCaRequest__Output>
        RotateCaResponse: MessageTypeDefinition<_svidkit_ca_v1_RotateCaResponse, _svidkit_ca_v1_RotateCaResponse__Output>
        TaintKeyRequest: MessageTypeDefinition<_svidkit_ca_v1_TaintKeyRequest, _svidkit_ca_v1_TaintKeyRequest__Output>
        TaintKeyResponse: MessageTypeDefinition<_svidkit_ca_v1_TaintKeyResponse, _svidkit_ca_v1_TaintKeyResponse__Output>
        WatchBundleRequest: MessageTypeDefinition<_svidkit_ca_v1_WatchBundleRequest, _svidkit_ca_v1_WatchBundleRequest__Output>
        X509Svid: MessageTypeDefinition<_svidkit_ca_v1_X509Svid, _svidkit_ca_v1_X509Svid__Output>
      }
    }
  }
}

