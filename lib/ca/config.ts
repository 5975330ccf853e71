/**
 * svidkit-ca configuration: the YAML keys, their defaults and bounds. Documented key by key in
 * docs/ca-config.md; this file is the one source of truth for the values.
 */
import { resolve } from 'node:path';
import { applyOverrides, envOverrides, readConfigFile, Section } from '../config/index.js';
import { SvidkitError } from '../errors/index.js';
import { KEY_TYPES, type KeyType } from '../keys/index.js';
import { TrustDomain } from '../spiffeid/index.js';

const S = 1000;
const MIN = 60 * S;
const H = 60 * MIN;

/** One Kubernetes cluster whose projected service-account tokens attest agents. */
export interface PsatClusterSettings {
  readonly name: string;
  readonly issuer: string;
  readonly audience: string;
  readonly jwksFile?: string;
  readonly discovery: boolean;
  readonly allow: ReadonlyArray<{ readonly namespace: string; readonly serviceAccount: string }>;
}

/** The whole, validated CA configuration. */
export interface CaConfig {
  readonly trustDomain: TrustDomain;
  /** Datastore and key files live here (created 0700). */
  readonly dataDir: string;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Where agents reach the Node service (TLS). */
  readonly listen: { readonly address: string; readonly port: number };
  /** The admin API: a Unix socket (0600) and, optionally, mTLS for admin SPIFFE IDs. */
  readonly admin: {
    readonly socket: string;
    readonly mtls?: { readonly address: string; readonly port: number; readonly adminIds: readonly string[] };
  };
  /** /metrics, /healthz and /readyz. */
  readonly observability: { readonly address: string; readonly port: number };
  readonly ca: {
    readonly keyType: KeyType;
    readonly ttlMs: number;
    readonly jwtKeyType: KeyType;
    readonly upstream?: { readonly certFile: string; readonly keyFile: string; readonly bundleFile: string };
  };
  /** Defaults for entries that do not set their own TTLs. */
  readonly defaultX509SvidTtlMs: number;
  readonly defaultJwtSvidTtlMs: number;
  readonly joinTokenDefaultTtlMs: number;
  readonly k8sPsat: readonly PsatClusterSettings[];
  /** Key types a workload or agent CSR may use. */
  readonly allowedKeyTypes: readonly KeyType[];
  readonly limits: CaLimits;
}

/** Bounds of the Node port (see docs/ca-config.md for the measurements behind each default). */
export interface CaLimits {
  readonly maxBatch: number;
  /** Largest gRPC message on a connection whose client certificate verified. */
  readonly maxMessageBytes: number;
  /** All connections on the Node port at once. */
  readonly maxConnections: number;
  /** Concurrent calls per verified connection. */
  readonly maxStreams: number;
  /** Longest TLS handshake; a peer that sends nothing is dropped after it. */
  readonly handshakeTimeoutMs: number;
  /** A verified connection without calls for this long is closed. */
  readonly idleTimeoutMs: number;
  /** A verified connection is asked to reconnect (GOAWAY) at this age. */
  readonly maxConnectionAgeMs: number;
  /** Connections still in their handshake or without a verified client certificate (AttestAgent). */
  readonly unauthenticated: {
    readonly maxConnections: number;
    readonly maxMessageBytes: number;
    readonly maxStreams: number;
    readonly idleTimeoutMs: number;
    readonly maxAgeMs: number;
  };
}

function bad(path: string, message: string): never {
  throw new SvidkitError('ERR_CONFIG', `config: ${path}: ${message}`);
}

/** Dotted keys that environment variables (SVIDKIT_CA_<KEY>) and flags may override. */
export const OVERRIDABLE_KEYS = [
  'trust_domain',
  'data_dir',
  'log_level',
  'listen.address',
  'listen.port',
  'admin.socket',
  'observability.address',
  'observability.port',
  'ca.ttl',
  'ca.key_type',
] as const;

/** Builds the configuration from a decoded document; throws ERR_CONFIG naming the first bad key. */
export function parseCaConfig(doc: unknown, baseDir = process.cwd()): CaConfig {
  const root = new Section(doc);
  const trustDomain = TrustDomain.parse(root.string('trust_domain', 'example.org'));
  const dataDir = resolve(baseDir, root.string('data_dir', './data/ca'));
  const logLevel = root.choice('log_level', ['debug', 'info', 'warn', 'error'] as const, 'info');

  const listenS = root.section('listen');
  const listen = { address: listenS.string('address', '127.0.0.1'), port: listenS.int('port', 8081, 0, 65535) };
  listenS.done();

  const adminS = root.section('admin');
  const socket = resolve(baseDir, adminS.string('socket', resolve(dataDir, 'admin.sock')));
  let mtls: CaConfig['admin']['mtls'];
  if (adminS.has('mtls')) {
    const m = adminS.section('mtls');
    mtls = {
      address: m.string('address', '127.0.0.1'),
      port: m.int('port', 8083, 0, 65535),
      adminIds: m.strings('admin_ids', 100),
    };
    m.done();
  }
  adminS.done();

  const obsS = root.section('observability');
  const observability = { address: obsS.string('address', '127.0.0.1'), port: obsS.int('port', 8082, 0, 65535) };
  obsS.done();

  const caS = root.section('ca');
  const ttlMs = caS.duration('ttl', 24 * H, 10 * MIN, 10 * 365 * 24 * H);
  const keyType = caS.choice('key_type', KEY_TYPES, 'ec-p256');
  const jwtKeyType = caS.choice(
    'jwt_key_type',
    ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'] as const,
    'ec-p256',
  );
  let upstream: CaConfig['ca']['upstream'];
  if (caS.has('upstream')) {
    const u = caS.section('upstream');
    upstream = {
      certFile: resolve(baseDir, u.string('cert_file')),
      keyFile: resolve(baseDir, u.string('key_file')),
      bundleFile: resolve(baseDir, u.string('bundle_file')),
    };
    u.done();
  }
  caS.done();

  // An SVID never outlives the CA that signed it: the key manager activates a new CA at 5/6 of its life.
  const maxSvidTtl = Math.floor(ttlMs / 6);
  const defaultX509SvidTtlMs = root.duration('x509_svid_ttl', Math.min(H, maxSvidTtl), 30 * S, maxSvidTtl);
  const defaultJwtSvidTtlMs = root.duration('jwt_svid_ttl', Math.min(5 * MIN, maxSvidTtl), 30 * S, maxSvidTtl);

  const att = root.section('attestation');
  const jt = att.section('join_token');
  const joinTokenDefaultTtlMs = jt.duration('default_ttl', 10 * MIN, 10 * S, 7 * 24 * H);
  jt.done();
  const psatS = att.section('k8s_psat');
  const k8sPsat = psatS.sections('clusters', 32).map((c) => {
    const jwksFile = c.optionalString('jwks_file');
    const discovery = c.bool('discovery', false);
    const cluster: PsatClusterSettings = {
      name: c.string('name'),
      issuer: c.string('issuer'),
      audience: c.string('audience'),
      jwksFile: jwksFile === undefined ? undefined : resolve(baseDir, jwksFile),
      discovery,
      allow: c.sections('allow', 100).map((a) => {
        const entry = { namespace: a.string('namespace'), serviceAccount: a.string('service_account') };
        a.done();
        return entry;
      }),
    };
    c.done();
    return cluster;
  });
  psatS.done();
  att.done();

  const allowed = root.strings('allowed_key_types', KEY_TYPES.length);
  for (const [i, t] of allowed.entries()) {
    if (!(KEY_TYPES as readonly string[]).includes(t))
      bad(`allowed_key_types[${i}]`, `must be one of ${KEY_TYPES.join(', ')}`);
  }
  const allowedKeyTypes: readonly KeyType[] = allowed.length > 0 ? (allowed as KeyType[]) : KEY_TYPES;

  const limS = root.section('limits');
  const maxConnections = limS.int('max_connections', 1024, 16, 65536);
  const unS = limS.section('unauthenticated');
  const unauthenticated = {
    maxConnections: unS.int('max_connections', 64, 4, maxConnections),
    // A PSAT (16 KiB at most) and a CSR (8 KiB at most) with their framing fit below 32 KiB.
    maxMessageBytes: unS.int('max_message_bytes', 32 * 1024, 32 * 1024, 1024 * 1024),
    maxStreams: unS.int('max_streams', 4, 1, 100),
    idleTimeoutMs: unS.duration('idle_timeout', 10 * S, 100, 5 * MIN),
    maxAgeMs: unS.duration('max_age', MIN, S, 10 * MIN),
  };
  unS.done();
  const limits: CaLimits = {
    maxBatch: limS.int('max_batch', 100, 1, 1000),
    maxMessageBytes: limS.int('max_message_bytes', 1024 * 1024, 16 * 1024, 16 * 1024 * 1024),
    maxConnections,
    maxStreams: limS.int('max_streams', 100, 1, 1000),
    handshakeTimeoutMs: limS.duration('handshake_timeout', 5 * S, 100, MIN),
    idleTimeoutMs: limS.duration('idle_timeout', 5 * MIN, S, 24 * H),
    maxConnectionAgeMs: limS.duration('max_connection_age', 12 * H, MIN, 30 * 24 * H),
    unauthenticated,
  };
  limS.done();
  root.done();

  return {
    trustDomain,
    dataDir,
    logLevel,
    listen,
    admin: { socket, mtls },
    observability,
    ca: { keyType, ttlMs, jwtKeyType, upstream },
    defaultX509SvidTtlMs,
    defaultJwtSvidTtlMs,
    joinTokenDefaultTtlMs,
    k8sPsat,
    allowedKeyTypes,
    limits,
  };
}

/** Reads the YAML file (if any), applies SVIDKIT_CA_* environment variables, then flag overrides. */
export async function loadCaConfig(options: {
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  flags?: ReadonlyMap<string, string>;
  baseDir?: string;
}): Promise<CaConfig> {
  const doc = await readConfigFile(options.configFile);
  const withEnv = applyOverrides(doc, envOverrides('SVIDKIT_CA', OVERRIDABLE_KEYS, options.env ?? {}));
  const withFlags = applyOverrides(withEnv, options.flags ?? new Map());
  return parseCaConfig(withFlags, options.baseDir);
}
