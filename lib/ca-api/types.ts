/** The generated message and client types of svidkit.ca.v1 that the CA's clients use (generated code stays in lib/generated). */
export type { AdminClient as GeneratedAdminClient } from '../generated/svidkit/ca/v1/Admin.js';
export type { AttestAgentResponse__Output } from '../generated/svidkit/ca/v1/AttestAgentResponse.js';
export type { BatchNewX509SvidResponse__Output } from '../generated/svidkit/ca/v1/BatchNewX509SvidResponse.js';
export type { Bundle__Output } from '../generated/svidkit/ca/v1/Bundle.js';
export type { CreateEntryResponse__Output } from '../generated/svidkit/ca/v1/CreateEntryResponse.js';
export type { CreateJoinTokenResponse__Output } from '../generated/svidkit/ca/v1/CreateJoinTokenResponse.js';
export type { GetCaStatusResponse__Output } from '../generated/svidkit/ca/v1/GetCaStatusResponse.js';
export type { ListAgentsResponse__Output } from '../generated/svidkit/ca/v1/ListAgentsResponse.js';
export type { ListAuthorizedEntriesResponse__Output } from '../generated/svidkit/ca/v1/ListAuthorizedEntriesResponse.js';
export type { NewJwtSvidResponse__Output } from '../generated/svidkit/ca/v1/NewJwtSvidResponse.js';
export type { NodeClient } from '../generated/svidkit/ca/v1/Node.js';
export type { RegistrationEntry } from '../generated/svidkit/ca/v1/RegistrationEntry.js';
export type { RenewAgentResponse__Output } from '../generated/svidkit/ca/v1/RenewAgentResponse.js';
