/**
 * Kubernetes projected service-account token (PSAT) attestation, verified offline against the
 * cluster issuer's public keys: no TokenReview call, so the CA needs no credentials for any cluster.
 *
 * Checks run in one fixed order so that a token with several faults always gets the same code, and
 * the cheap unauthenticated ones (size, structure, algorithm, issuer) run before any key is fetched
 * or used. Decoding, the algorithm list and the signature are the JWS core's (lib/jws), shared with
 * JWT-SVID validation; the claim and time rules are the attestor's, against the injected clock.
 */
import { decodeCompactJwsAs, isNumericDate, type JwsFailure, verifyJwsSignature } from '../jws/index.js';
import { type ErrorCode, SvidkitError } from '../errors/index.js';
import { SpiffeId, TrustDomain, validatePathSegment } from '../spiffeid/index.js';
import { psatAgentId } from '../ca-api/ids.js';
import {
  fetchUrlProblem,
  type IssuerKey,
  type IssuerKeySet,
  keyMismatch,
  loadJwksByDiscovery,
  loadJwksFile,
  MAX_KID_LENGTH,
  type PsatAlgorithm,
  quote,
} from './jwks.js';

/** Largest token accepted, in UTF-8 bytes; bounds the work an unauthenticated caller can cause. */
export const MAX_PSAT_BYTES = 16 * 1024;
/** Clock-skew allowance for exp and nbf, in seconds; fixed so no configuration can stretch a token's life. */
export const PSAT_LEEWAY_SECONDS = 30;
/** Default time a loaded JWKS is used before it is loaded again, in seconds. */
export const DEFAULT_JWKS_CACHE_SECONDS = 300;
/** Least time between two refetches caused by unknown key IDs, in seconds. */
export const JWKS_REFETCH_INTERVAL_SECONDS = 10;

// A day: keys that are never re-read would miss a rotation for good.
const MAX_CACHE_SECONDS = 86_400;
// Kubernetes names and UIDs fit in a DNS subdomain (253 characters); anything longer is not from Kubernetes.
const MAX_NAME_LENGTH = 253;
const SUBJECT_PREFIX = 'system:serviceaccount:';

/** One Kubernetes cluster whose service-account tokens the CA accepts. */
export interface PsatClusterConfig {
  /** Cluster name; becomes a segment of agent IDs, so it must be a valid SPIFFE path segment. */
  name: string;
  /** The cluster's service-account issuer (`--service-account-issuer`); a token's iss must equal it. */
  issuer: string;
  /** The audience the agent's projected token is requested for; aud must contain it exactly. */
  audience: string;
  /** Path of a JWKS file with the issuer's public keys (from `kubectl get --raw /openid/v1/jwks`). */
  jwksFile?: string;
  /** Load the keys by OIDC discovery from `<issuer>/.well-known/openid-configuration` instead. */
  discovery?: boolean;
  /** With discovery: another origin (`https://host[:port]`) the jwks_uri may be on. */
  allowJwksOrigin?: string;
  /** The (namespace, service account) pairs whose tokens attest an agent, e.g. the agent DaemonSet's. */
  allow: ReadonlyArray<{ namespace: string; serviceAccount: string }>;
}

/** Options of PsatAttestor. */
export interface PsatAttestorOptions {
  /** Current time; injected so tests and replays do not depend on the wall clock. */
  clock?: () => Date;
  /** HTTP client for discovery; injected so tests and proxies can supply their own. */
  fetch?: typeof fetch;
  /** Seconds a loaded JWKS is used before it is loaded again; DEFAULT_JWKS_CACHE_SECONDS when absent. */
  cacheSeconds?: number;
}

/** What a successful PSAT attestation proves about the agent. */
export interface PsatAttestation {
  /** `spiffe://<td>/svidkit/agent/k8s_psat/<cluster>/<node name>`. */
  readonly agentId: SpiffeId;
  /** The configured cluster name. */
  readonly cluster: string;
  /** The agent pod's namespace. */
  readonly namespace: string;
  /** The agent pod's service account. */
  readonly serviceAccount: string;
  /** The agent pod's name. */
  readonly podName: string;
  /** The agent pod's UID. */
  readonly podUid: string;
  /** The node the agent pod runs on. */
  readonly nodeName: string;
  /** The node's UID, when the token carries it. */
  readonly nodeUid?: string;
}

type JsonObject = Record<string, unknown>;

interface Cluster {
  readonly name: string;
  readonly issuer: string;
  readonly audience: string;
  readonly jwksFile: string | undefined;
  readonly allowJwksOrigin: string | undefined;
  readonly allow: ReadonlySet<string>;
}

/** The key cache of one cluster. Times are milliseconds of the injected clock. */
interface KeyState {
  keys: IssuerKeySet | undefined;
  loadedAt: number;
  failedAt: number | undefined;
  failure: unknown;
  refetchedAt: number | undefined;
  inflight: Promise<IssuerKeySet> | undefined;
}

type KeyLookup = { kind: 'found'; key: IssuerKey } | { kind: 'none' } | { kind: 'ambiguous' };

function fail(code: ErrorCode, message: string, cause?: unknown): never {
  throw new SvidkitError(code, `attest: ${message}`, cause === undefined ? undefined : { cause });
}

function configFail(message: string, cause?: unknown): never {
  fail('ERR_ATTEST_PSAT_CONFIG', message, cause);
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isName(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_NAME_LENGTH;
}

// A separator that cannot appear in Kubernetes names, so two pairs never collide as one key.
function allowKey(namespace: string, serviceAccount: string): string {
  return `${namespace}\u0000${serviceAccount}`;
}

function checkCluster(config: PsatClusterConfig, index: number): Cluster {
  const where = `cluster #${index}`;
  if (!isObject(config)) configFail(`${where} must be an object`);
  const { name, issuer, audience, jwksFile, discovery, allowJwksOrigin, allow } = config;
  if (typeof name !== 'string') configFail(`${where} needs a name`);
  try {
    validatePathSegment(name);
  } catch (cause) {
    configFail(`${where}: name ${quote(name)} is not a valid SPIFFE path segment`, cause);
  }
  const here = `cluster ${quote(name)}`;
  if (typeof issuer !== 'string' || issuer === '') configFail(`${here} needs an issuer`);
  if (!URL.canParse(issuer)) configFail(`${here}: issuer is not a URL`);
  if (typeof audience !== 'string' || audience === '') configFail(`${here} needs an audience`);

  const useFile = jwksFile !== undefined;
  const useDiscovery = discovery === true;
  if (discovery !== undefined && typeof discovery !== 'boolean') configFail(`${here}: discovery must be a boolean`);
  if (useFile === useDiscovery) configFail(`${here} needs exactly one of jwksFile and discovery`);
  if (useFile && (typeof jwksFile !== 'string' || jwksFile === '')) configFail(`${here}: jwksFile must be a path`);
  if (useDiscovery) {
    const url = new URL(issuer);
    const problem = fetchUrlProblem(url);
    if (problem !== undefined) configFail(`${here}: an issuer used for discovery ${problem}`);
    if (url.search !== '' || url.hash !== '') configFail(`${here}: issuer must not have a query or fragment`);
  }
  let jwksOrigin: string | undefined;
  if (allowJwksOrigin !== undefined) {
    if (!useDiscovery) configFail(`${here}: allowJwksOrigin only applies with discovery`);
    // Only a bare origin, so the operator's intent ("keys may come from that host") is unambiguous.
    if (typeof allowJwksOrigin !== 'string' || !URL.canParse(allowJwksOrigin)) {
      configFail(`${here}: allowJwksOrigin must be an origin like https://keys.example.com`);
    }
    const url = new URL(allowJwksOrigin);
    if (url.origin !== allowJwksOrigin.replace(/\/$/, '') || fetchUrlProblem(url) !== undefined) {
      configFail(`${here}: allowJwksOrigin must be an origin like https://keys.example.com`);
    }
    jwksOrigin = url.origin;
  }

  if (!Array.isArray(allow) || allow.length === 0) {
    // An empty list would refuse every token; that is a mistake worth stopping at startup.
    configFail(`${here} needs a non-empty allow list`);
  }
  const allowed = new Set<string>();
  for (const entry of allow) {
    if (!isObject(entry) || !isName(entry['namespace']) || !isName(entry['serviceAccount'])) {
      configFail(`${here}: every allow entry needs a namespace and a serviceAccount`);
    }
    allowed.add(allowKey(entry['namespace'], entry['serviceAccount']));
  }

  return Object.freeze({
    name,
    issuer,
    audience,
    jwksFile: useFile ? jwksFile : undefined,
    allowJwksOrigin: jwksOrigin,
    allow: allowed,
  });
}

/** Strict base64url: unpadded and canonical, so that one token has exactly one meaning. */
interface Decoded {
  readonly alg: PsatAlgorithm;
  readonly kid: string | undefined;
  readonly claims: JsonObject;
  /** What the signature covers, exactly as received: the claims above were decoded from it. */
  readonly signingInput: Buffer;
  readonly signature: Buffer;
}

/** The attestor's code for each step of the JWS reader. */
const JWS_CODES: Readonly<Record<JwsFailure, ErrorCode>> = {
  'too-large': 'ERR_ATTEST_PSAT_TOO_LARGE',
  malformed: 'ERR_ATTEST_PSAT_MALFORMED',
  algorithm: 'ERR_ATTEST_PSAT_ALGORITHM',
};

/** The unauthenticated steps, in order: size, structure, alg, crit/typ, kid. */
function decodeToken(token: unknown): Decoded {
  if (typeof token !== 'string') fail('ERR_ATTEST_PSAT_MALFORMED', 'token must be a string');
  const decoded = decodeCompactJwsAs(token, MAX_PSAT_BYTES, JWS_CODES, 'attest');
  const { header, alg, claims, signingInput, signature } = decoded;
  // No extension is understood, and RFC 7515 says a critical one we do not understand must fail.
  if (Object.hasOwn(header, 'crit')) fail('ERR_ATTEST_PSAT_MALFORMED', 'header has a crit parameter');
  // Kubernetes sets no typ; when present it must at least say JWT, so other token kinds are not confused.
  const typ = header['typ'];
  if (typ !== undefined && (typeof typ !== 'string' || typ.toUpperCase() !== 'JWT')) {
    fail('ERR_ATTEST_PSAT_MALFORMED', 'header typ must be absent or "JWT"');
  }
  // jku, jwk, x5u and x5c are ignored on purpose: keys only ever come from the configured issuer.
  const kid = header['kid'];
  if (kid !== undefined && (typeof kid !== 'string' || kid === '' || kid.length > MAX_KID_LENGTH)) {
    fail('ERR_ATTEST_PSAT_MALFORMED', 'header kid must be a non-empty string of at most 256 characters');
  }
  return { alg, kid, claims, signingInput, signature };
}

function lookupKey(keys: IssuerKeySet, alg: PsatAlgorithm, kid: string | undefined): KeyLookup {
  if (kid !== undefined) {
    const key = keys.byKid.get(kid);
    return key === undefined ? { kind: 'none' } : { kind: 'found', key };
  }
  // Without a kid the choice must be forced: guessing among several keys would make any of them do.
  const candidates = keys.keys.filter((k) => keyMismatch(k, alg) === undefined);
  if (candidates.length === 1) return { kind: 'found', key: candidates[0]! };
  return candidates.length === 0 ? { kind: 'none' } : { kind: 'ambiguous' };
}

/** Reads a required non-empty string member of an object claim. */
function claimName(obj: JsonObject | undefined, member: string, path: string): string {
  const value = obj?.[member];
  if (!isName(value)) fail('ERR_ATTEST_PSAT_CLAIMS', `token has no valid ${path} claim`);
  return value;
}

function claimObject(obj: JsonObject | undefined, member: string, path: string): JsonObject {
  const value = obj?.[member];
  if (!isObject(value)) fail('ERR_ATTEST_PSAT_CLAIMS', `token has no ${path} claim`);
  return value;
}

/** Attests node agents by their Kubernetes projected service-account tokens. */
export class PsatAttestor {
  /** The trust domain agent IDs are issued in. */
  readonly trustDomain: TrustDomain;
  readonly #clusters: readonly Cluster[];
  readonly #byName: ReadonlyMap<string, Cluster>;
  readonly #state = new Map<Cluster, KeyState>();
  readonly #clock: () => Date;
  readonly #fetch: typeof fetch;
  readonly #cacheMs: number;

  /** Checks the configuration up front; throws ERR_ATTEST_PSAT_CONFIG so a bad config stops startup. */
  constructor(
    trustDomain: TrustDomain | string,
    clusters: readonly PsatClusterConfig[],
    options: PsatAttestorOptions = {},
  ) {
    this.trustDomain = trustDomain instanceof TrustDomain ? trustDomain : TrustDomain.parse(trustDomain);
    if (!Array.isArray(clusters) || clusters.length === 0) configFail('at least one cluster is needed');
    const checked = clusters.map((c, i) => checkCluster(c, i));
    const byName = new Map<string, Cluster>();
    for (const c of checked) {
      if (byName.has(c.name)) configFail(`cluster name ${quote(c.name)} is used twice`);
      byName.set(c.name, c);
      this.#state.set(c, {
        keys: undefined,
        loadedAt: 0,
        failedAt: undefined,
        failure: undefined,
        refetchedAt: undefined,
        inflight: undefined,
      });
    }
    this.#clusters = Object.freeze(checked);
    this.#byName = byName;

    const { clock = () => new Date(), fetch: fetchImpl = globalThis.fetch, cacheSeconds } = options;
    if (typeof clock !== 'function') throw new TypeError('attest: clock must be a function');
    if (typeof fetchImpl !== 'function') throw new TypeError('attest: fetch must be a function');
    const cache = cacheSeconds ?? DEFAULT_JWKS_CACHE_SECONDS;
    if (typeof cache !== 'number' || !Number.isFinite(cache) || cache < 0 || cache > MAX_CACHE_SECONDS) {
      throw new RangeError(`attest: cacheSeconds must be between 0 and ${MAX_CACHE_SECONDS}`);
    }
    this.#clock = clock;
    this.#fetch = fetchImpl;
    this.#cacheMs = cache * 1000;
  }

  /** The configured cluster names. */
  clusterNames(): string[] {
    return this.#clusters.map((c) => c.name);
  }

  /**
   * Verifies a projected service-account token and returns the agent's identity.
   *
   * Order: size, structure, alg, crit/typ, kid, cluster (by name or iss), key lookup (one
   * rate-limited refetch on an unknown kid), key fit, signature, exp, nbf, iat, aud, sub and the
   * kubernetes.io claims, allow-list, node name. Every refusal is a SvidkitError with an
   * ERR_ATTEST_PSAT_* code and a message that never contains the token.
   */
  async attest(token: string, clusterName?: string): Promise<PsatAttestation> {
    if (clusterName !== undefined && typeof clusterName !== 'string') {
      throw new TypeError('attest: clusterName must be a string');
    }
    const { alg, kid, claims, signingInput, signature } = decodeToken(token);
    const cluster = this.#selectCluster(claims['iss'], clusterName);

    const issuerKey = await this.#findKey(cluster, alg, kid);
    const mismatch = keyMismatch(issuerKey, alg);
    if (mismatch !== undefined)
      fail('ERR_ATTEST_PSAT_SIGNATURE', `the issuer key cannot verify this token: ${mismatch}`);
    // The JWS core checks the signature over the very bytes the claims were decoded from, so there is
    // no second parse whose result could differ.
    if (!verifyJwsSignature(signingInput, signature, issuerKey.key, alg)) {
      fail('ERR_ATTEST_PSAT_SIGNATURE', `signature does not verify with the key of cluster ${quote(cluster.name)}`);
    }

    this.#checkTimes(claims);

    const aud = claims['aud'];
    const audiences = typeof aud === 'string' ? [aud] : aud;
    if (!Array.isArray(audiences) || !audiences.every((a) => typeof a === 'string')) {
      fail('ERR_ATTEST_PSAT_AUDIENCE', 'token has no valid aud claim');
    }
    if (!audiences.includes(cluster.audience)) {
      fail('ERR_ATTEST_PSAT_AUDIENCE', `token audience does not include ${quote(cluster.audience)}`);
    }

    const k8s = claimObject(claims, 'kubernetes.io', 'kubernetes.io');
    const namespace = claimName(k8s, 'namespace', 'kubernetes.io.namespace');
    const serviceAccount = claimName(
      claimObject(k8s, 'serviceaccount', 'kubernetes.io.serviceaccount'),
      'name',
      'kubernetes.io.serviceaccount.name',
    );
    // Both say who the token is for; a token where they disagree was not made by a Kubernetes API server.
    if (claims['sub'] !== `${SUBJECT_PREFIX}${namespace}:${serviceAccount}`) {
      fail(
        'ERR_ATTEST_PSAT_SUBJECT',
        'sub claim does not match system:serviceaccount:<namespace>:<name> of kubernetes.io',
      );
    }
    // Pod and node info is in projected tokens since Kubernetes 1.30; without the node there is no agent ID.
    const pod = claimObject(k8s, 'pod', 'kubernetes.io.pod');
    const podName = claimName(pod, 'name', 'kubernetes.io.pod.name');
    const podUid = claimName(pod, 'uid', 'kubernetes.io.pod.uid');
    const node = claimObject(k8s, 'node', 'kubernetes.io.node');
    const nodeName = claimName(node, 'name', 'kubernetes.io.node.name');
    const nodeUid = node['uid'];
    if (nodeUid !== undefined && !isName(nodeUid))
      fail('ERR_ATTEST_PSAT_CLAIMS', 'kubernetes.io.node.uid is not valid');

    if (!cluster.allow.has(allowKey(namespace, serviceAccount))) {
      fail(
        'ERR_ATTEST_PSAT_NOT_ALLOWED',
        `service account ${quote(serviceAccount)} in namespace ${quote(namespace)} may not attest agents of cluster ${quote(cluster.name)}`,
      );
    }

    // The node name comes from the token: check it as a path segment before it goes into an ID.
    let agentId: SpiffeId;
    try {
      validatePathSegment(nodeName);
      agentId = psatAgentId(this.trustDomain, cluster.name, nodeName);
    } catch (cause) {
      fail('ERR_ATTEST_PSAT_NODE_NAME', `node name ${quote(nodeName)} cannot be part of a SPIFFE ID`, cause);
    }

    const result: PsatAttestation = {
      agentId,
      cluster: cluster.name,
      namespace,
      serviceAccount,
      podName,
      podUid,
      nodeName,
      ...(nodeUid === undefined ? {} : { nodeUid }),
    };
    return Object.freeze(result);
  }

  #now(): number {
    const now = this.#clock();
    if (!(now instanceof Date) || Number.isNaN(now.getTime())) {
      throw new TypeError('attest: clock must return a valid Date');
    }
    return now.getTime();
  }

  #checkTimes(claims: JsonObject): void {
    const nowSeconds = this.#now() / 1000;
    // Tokens without exp (the legacy Secret-based kind) never expire; they are refused outright.
    const exp = claims['exp'];
    if (!isNumericDate(exp)) fail('ERR_ATTEST_PSAT_CLAIMS', 'token has no valid numeric exp claim');
    if (nowSeconds > exp + PSAT_LEEWAY_SECONDS) {
      fail('ERR_ATTEST_PSAT_EXPIRED', `token expired at ${new Date(exp * 1000).toISOString()}`);
    }
    const nbf = claims['nbf'];
    if (nbf !== undefined) {
      if (!isNumericDate(nbf)) fail('ERR_ATTEST_PSAT_CLAIMS', 'nbf claim is not a NumericDate');
      if (nowSeconds < nbf - PSAT_LEEWAY_SECONDS) {
        fail('ERR_ATTEST_PSAT_NOT_YET_VALID', `token is not valid before ${new Date(nbf * 1000).toISOString()}`);
      }
    }
    // iat is only type-checked: exp and nbf bound the window, and comparing iat would turn an API
    // server clock that runs ahead into refused agents.
    const iat = claims['iat'];
    if (iat !== undefined && !isNumericDate(iat)) fail('ERR_ATTEST_PSAT_CLAIMS', 'iat claim is not a NumericDate');
  }

  #selectCluster(iss: unknown, clusterName: string | undefined): Cluster {
    if (typeof iss !== 'string' || iss === '') fail('ERR_ATTEST_PSAT_ISSUER', 'token has no iss claim');
    if (clusterName !== undefined) {
      const cluster = this.#byName.get(clusterName);
      if (cluster === undefined) fail('ERR_ATTEST_PSAT_UNKNOWN_CLUSTER', `no cluster named ${quote(clusterName)}`);
      if (cluster.issuer !== iss) {
        fail('ERR_ATTEST_PSAT_ISSUER', `token issuer ${quote(iss)} is not the issuer of cluster ${quote(clusterName)}`);
      }
      return cluster;
    }
    const matches = this.#clusters.filter((c) => c.issuer === iss);
    if (matches.length === 0) fail('ERR_ATTEST_PSAT_ISSUER', `token issuer ${quote(iss)} is not configured`);
    // Clusters left at the default issuer (https://kubernetes.default.svc...) all share it.
    if (matches.length > 1) {
      fail('ERR_ATTEST_PSAT_ISSUER', `token issuer ${quote(iss)} belongs to several clusters; name the cluster`);
    }
    return matches[0]!;
  }

  async #findKey(cluster: Cluster, alg: PsatAlgorithm, kid: string | undefined): Promise<IssuerKey> {
    const state = this.#state.get(cluster)!;
    const { keys, fresh } = await this.#currentKeys(cluster, state);
    let found = lookupKey(keys, alg, kid);
    let refetchError: unknown;
    // A set loaded during this very call is as new as a refetch would get; do not download it twice.
    if (found.kind === 'none' && !fresh) {
      const refetched = await this.#refetch(cluster, state);
      refetchError = refetched.error;
      if (refetched.keys !== undefined) found = lookupKey(refetched.keys, alg, kid);
    }
    if (found.kind === 'found') return found.key;
    if (found.kind === 'ambiguous') {
      fail(
        'ERR_ATTEST_PSAT_AMBIGUOUS_KEY',
        `token has no kid and cluster ${quote(cluster.name)} has several ${alg} keys`,
      );
    }
    fail(
      'ERR_ATTEST_PSAT_UNKNOWN_KID',
      kid === undefined
        ? `token has no kid and cluster ${quote(cluster.name)} has no ${alg} key`
        : `cluster ${quote(cluster.name)} has no key with kid ${quote(kid)}`,
      refetchError,
    );
  }

  /** The cached keys, reloaded when older than cacheSeconds; a failed reload keeps the last good set. */
  async #currentKeys(cluster: Cluster, state: KeyState): Promise<{ keys: IssuerKeySet; fresh: boolean }> {
    const now = this.#now();
    const age = now - state.loadedAt;
    // A clock that went backwards makes the age negative: reload rather than trust the cache forever.
    if (state.keys !== undefined && age >= 0 && age < this.#cacheMs) return { keys: state.keys, fresh: false };
    // After a failure, wait the refetch interval before trying again, so that a dead issuer is not
    // hammered at the rate agents (or an attacker) send tokens.
    if (this.#recent(state.failedAt, now)) {
      if (state.keys !== undefined) return { keys: state.keys, fresh: false };
      fail('ERR_ATTEST_PSAT_JWKS', `keys of cluster ${quote(cluster.name)} are unavailable`, state.failure);
    }
    try {
      return { keys: await this.#load(cluster, state), fresh: true };
    } catch (cause) {
      if (state.keys !== undefined) return { keys: state.keys, fresh: false };
      throw cause;
    }
  }

  /** One reload after an unknown kid, at most every JWKS_REFETCH_INTERVAL_SECONDS. */
  async #refetch(cluster: Cluster, state: KeyState): Promise<{ keys?: IssuerKeySet; error?: unknown }> {
    const now = this.#now();
    // Unknown kids are attacker-controlled: without a limit every bad token would cost a download.
    if (this.#recent(state.refetchedAt, now)) return {};
    // A load that just failed would fail again; the last good set stays what we have.
    if (this.#recent(state.failedAt, now)) return { error: state.failure };
    state.refetchedAt = now;
    try {
      return { keys: await this.#load(cluster, state) };
    } catch (error) {
      return { error };
    }
  }

  #recent(time: number | undefined, now: number): boolean {
    if (time === undefined) return false;
    const elapsed = now - time;
    return elapsed >= 0 && elapsed < JWKS_REFETCH_INTERVAL_SECONDS * 1000;
  }

  /** Loads the keys once; concurrent callers share the one load in flight. */
  #load(cluster: Cluster, state: KeyState): Promise<IssuerKeySet> {
    if (state.inflight !== undefined) return state.inflight;
    const load = async (): Promise<IssuerKeySet> => {
      try {
        const keys =
          cluster.jwksFile !== undefined
            ? await loadJwksFile(cluster.jwksFile)
            : await loadJwksByDiscovery(cluster.issuer, this.#fetch, cluster.allowJwksOrigin);
        state.keys = keys;
        state.loadedAt = this.#now();
        state.failedAt = undefined;
        state.failure = undefined;
        return keys;
      } catch (cause) {
        state.failedAt = this.#now();
        state.failure = cause;
        // Loader errors are already ERR_ATTEST_PSAT_JWKS; anything else (a throwing fetch) is wrapped.
        if (cause instanceof SvidkitError) throw cause;
        fail('ERR_ATTEST_PSAT_JWKS', `keys of cluster ${quote(cluster.name)} could not be loaded`, cause);
      } finally {
        state.inflight = undefined;
      }
    };
    state.inflight = load();
    return state.inflight;
  }
}
