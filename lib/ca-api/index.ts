/**
 * The CA API, the contract between svidkit-ca and its clients (svidkit-agent, the svidkit CLI,
 * programs that manage a CA): the svidkit.ca.v1 proto and its generated types, the IDs svidkit
 * reserves, the limits both ends hold to, the selectors of registration entries, and the Admin client.
 */
export {
  type AdminAgent,
  type AdminCaKey,
  type AdminCaStatus,
  AdminClient,
  type AdminEntry,
  DEFAULT_ADMIN_TIMEOUT_MS,
  type NewEntry,
} from './admin-client.js';
export {
  AGENT_PATH_PREFIX,
  CA_SERVER_PATH,
  caServerId,
  isAgentId,
  isReservedPath,
  joinTokenAgentId,
  psatAgentId,
  RESERVED_PATH,
} from './ids.js';
export {
  MAX_AUDIENCE_BYTES,
  MAX_AUDIENCE_LENGTH,
  MAX_AUDIENCES,
  MAX_JOIN_TOKEN_LENGTH,
  MIN_JOIN_TOKEN_LENGTH,
  validateJoinToken,
} from './limits.js';
export { caProto } from './proto.js';
export {
  canonicalSelectors,
  entryMatches,
  formatSelector,
  MAX_ENTRY_SELECTORS,
  MAX_SELECTOR_BYTES,
  parseSelector,
  SELECTOR_TYPES,
  type Selector,
  type SelectorRefusal,
} from './selectors.js';
export {
  MAX_TEMPLATE_BYTES,
  MAX_TEMPLATE_PLACEHOLDERS,
  SpiffeIdTemplate,
  TEMPLATE_SELECTOR_KEYS,
  TRUST_DOMAIN_PLACEHOLDER,
} from './templates.js';
export type { ProtoGrpcType as CaProto } from '../generated/ca.js';
export type * from './types.js';
