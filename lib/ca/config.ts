/**
 * svidkit-ca configuration: the YAML keys, their defaults and bounds. Documented key by key in
 * docs/ca-config.md; this file is the one source of truth for the values.
 */
import { resolve } from 'node:path';
import * as z from 'zod';
import { applyOverrides, bad, cfg, envOverrides, parseWithSchema, readConfigFile } from '../config/index.js';
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

const address = (def: string) => cfg.string().default(def);
const port = (def: number) => cfg.int(0, 65535).default(def);
const CLUSTER = cfg.mapping({
  name: cfg.string(),
  issuer: cfg.string(),
  audience: cfg.string(),
  jwks_file: cfg.string().optional(),
  discovery: cfg.bool().default(false),
  allow: cfg.sections(100, cfg.mapping({ namespace: cfg.string(), service_account: cfg.string() })),
});

function svidTtlText(def: string): string {
  return `A duration (30s, 5m, 1h; a bare number is seconds) from 30s to ca.ttl / 6; by default ${def} or ca.ttl / 6, whichever is shorter.`;
}

/** ca.yaml as a schema: keys, types, defaults and the bounds that do not depend on another key. */
export const CA_CONFIG_SCHEMA = cfg.section({
  trust_domain: cfg.string().default('example.org'),
  data_dir: cfg.string().default('./data/ca'),
  log_level: cfg.choice(['debug', 'info', 'warn', 'error']).default('info'),
  listen: cfg.section({ address: address('127.0.0.1'), port: port(8081) }),
  admin: cfg.section(
    {
      socket: cfg.string().optional(),
      mtls: cfg.mapping({ address: address('127.0.0.1'), port: port(8083), admin_ids: cfg.strings(100) }).optional(),
    },
    ['mtls'],
  ),
  observability: cfg.section({ address: address('127.0.0.1'), port: port(8082) }),
  ca: cfg.section(
    {
      ttl: cfg.duration(10 * MIN, 10 * 365 * 24 * H).prefault('24h'),
      key_type: cfg.choice(KEY_TYPES).default('ec-p256'),
      jwt_key_type: cfg.choice(['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096']).default('ec-p256'),
      upstream: cfg.mapping({ cert_file: cfg.string(), key_file: cfg.string(), bundle_file: cfg.string() }).optional(),
    },
    ['upstream'],
  ),
  // Defaults and upper bounds follow ca.ttl (see parseCaConfig).
  x509_svid_ttl: cfg
    .duration()
    .optional()
    .meta({ description: svidTtlText('1h') }),
  jwt_svid_ttl: cfg
    .duration()
    .optional()
    .meta({ description: svidTtlText('5m') }),
  attestation: cfg.section({
    join_token: cfg.section({ default_ttl: cfg.duration(10 * S, 7 * 24 * H).prefault('10m') }),
    k8s_psat: cfg.section({ clusters: cfg.sections(32, CLUSTER) }),
  }),
  allowed_key_types: cfg.choices(KEY_TYPES.length, KEY_TYPES),
  limits: cfg.section({
    max_batch: cfg.int(1, 1000).default(100),
    max_message_bytes: cfg.int(16 * 1024, 16 * 1024 * 1024).default(1024 * 1024),
    max_connections: cfg.int(16, 65536).default(1024),
    max_streams: cfg.int(1, 1000).default(100),
    handshake_timeout: cfg.duration(100, MIN).prefault('5s'),
    idle_timeout: cfg.duration(S, 24 * H).prefault('5m'),
    max_connection_age: cfg.duration(MIN, 30 * 24 * H).prefault('12h'),
    unauthenticated: cfg.section({
      // From 4 to limits.max_connections: checked in parseCaConfig, whose message names that bound.
      max_connections: z.unknown().optional().meta({
        type: 'integer',
        minimum: 4,
        maximum: 65536,
        default: 64,
        description: 'At most limits.max_connections.',
      }),
      // A PSAT (16 KiB at most) and a CSR (8 KiB at most) with their framing fit below 32 KiB.
      max_message_bytes: cfg.int(32 * 1024, 1024 * 1024).default(32 * 1024),
      max_streams: cfg.int(1, 100).default(4),
      idle_timeout: cfg.duration(100, 5 * MIN).prefault('10s'),
      max_age: cfg.duration(S, 10 * MIN).prefault('1m'),
    }),
  }),
});

/** Builds the configuration from a decoded document; throws ERR_CONFIG naming the first bad key. */
export function parseCaConfig(doc: unknown, baseDir = process.cwd()): CaConfig {
  const c = parseWithSchema(CA_CONFIG_SCHEMA, doc);
  // The rules that join two keys, after the schema has checked each key on its own.
  // An SVID never outlives the CA that signed it: the key manager activates a new CA at 5/6 of its life.
  const maxSvidTtl = Math.floor(c.ca.ttl / 6);
  const svidTtl = (key: string, value: number | undefined, def: number): number => {
    const ms = value ?? Math.min(def, maxSvidTtl);
    if (ms < 30 * S || ms > maxSvidTtl) bad(key, `must be between 30s and ${maxSvidTtl / 1000}s`);
    return ms;
  };
  const defaultX509SvidTtlMs = svidTtl('x509_svid_ttl', c.x509_svid_ttl, H);
  const defaultJwtSvidTtlMs = svidTtl('jwt_svid_ttl', c.jwt_svid_ttl, 5 * MIN);
  const lim = c.limits;
  const unauthConnections = lim.unauthenticated.max_connections ?? 64;
  if (
    !Number.isInteger(unauthConnections) ||
    !((unauthConnections as number) >= 4 && (unauthConnections as number) <= lim.max_connections)
  ) {
    bad('limits.unauthenticated.max_connections', `must be an integer from 4 to ${lim.max_connections}`);
  }

  const trustDomain = TrustDomain.parse(c.trust_domain);
  const dataDir = resolve(baseDir, c.data_dir);
  const mtls = c.admin.mtls;
  const up = c.ca.upstream;
  return {
    trustDomain,
    dataDir,
    logLevel: c.log_level,
    listen: c.listen,
    admin: {
      socket: resolve(baseDir, c.admin.socket ?? resolve(dataDir, 'admin.sock')),
      mtls: mtls && { address: mtls.address, port: mtls.port, adminIds: mtls.admin_ids },
    },
    observability: c.observability,
    ca: {
      keyType: c.ca.key_type,
      ttlMs: c.ca.ttl,
      jwtKeyType: c.ca.jwt_key_type,
      upstream: up && {
        certFile: resolve(baseDir, up.cert_file),
        keyFile: resolve(baseDir, up.key_file),
        bundleFile: resolve(baseDir, up.bundle_file),
      },
    },
    defaultX509SvidTtlMs,
    defaultJwtSvidTtlMs,
    joinTokenDefaultTtlMs: c.attestation.join_token.default_ttl,
    k8sPsat: c.attestation.k8s_psat.clusters.map((k) => ({
      name: k.name,
      issuer: k.issuer,
      audience: k.audience,
      jwksFile: k.jwks_file === undefined ? undefined : resolve(baseDir, k.jwks_file),
      discovery: k.discovery,
      allow: k.allow.map((a) => ({ namespace: a.namespace, serviceAccount: a.service_account })),
    })),
    allowedKeyTypes: c.allowed_key_types.length > 0 ? c.allowed_key_types : KEY_TYPES,
    limits: {
      maxBatch: lim.max_batch,
      maxMessageBytes: lim.max_message_bytes,
      maxConnections: lim.max_connections,
      maxStreams: lim.max_streams,
      handshakeTimeoutMs: lim.handshake_timeout,
      idleTimeoutMs: lim.idle_timeout,
      maxConnectionAgeMs: lim.max_connection_age,
      unauthenticated: {
        maxConnections: unauthConnections as number,
        maxMessageBytes: lim.unauthenticated.max_message_bytes,
        maxStreams: lim.unauthenticated.max_streams,
        idleTimeoutMs: lim.unauthenticated.idle_timeout,
        maxAgeMs: lim.unauthenticated.max_age,
      },
    },
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
