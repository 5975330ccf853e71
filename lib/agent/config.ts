/**
 * svidkit-agent configuration: the YAML keys, their defaults and bounds. Documented key by key in
 * docs/agent-config.md; this file is the one source of truth for the values.
 *
 * Every refusal is ERR_CONFIG and names the key path (`workloads[3].key_mode`); loadAgentConfig adds
 * the file's name. Nothing here touches the network or reads the files the configuration points to
 * (bundle, token, pid files): they are read when used, because several of them (the bootstrap bundle,
 * a one-time join token) only matter on first contact and may legitimately be gone later.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { constants as osConstants } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isMap, isScalar, isSeq, parseDocument } from 'yaml';
import * as z from 'zod';
import { caServerId, isReservedPath, MAX_AUDIENCES, RESERVED_PATH, validateJoinToken } from '../ca-api/index.js';
import { applyOverrides, at, bad, cfg, envOverrides, parseWithSchema, readConfigFile } from '../config/index.js';
import { isSvidkitError, SvidkitError } from '../errors/index.js';
import { KEY_TYPES, type KeyType } from '../keys/index.js';
import { DEFAULT_FILE_NAMES, type FileNames, tokenFileName } from '../layout/index.js';
import { SpiffeId, TrustDomain, validatePathSegment } from '../spiffeid/index.js';
import { parseWorkloadApi, WORKLOAD_API_SECTION, type WorkloadApiConfig } from './config-workload-api.js';
import { isWithin } from './trust.js';

const S = 1000;
const MIN = 60 * S;

/** Environment variables that override the file start with this prefix (SVIDKIT_AGENT_CA_ADDRESS). */
export const ENV_PREFIX = 'SVIDKIT_AGENT';
/** The join token may come from this environment variable instead of the file. */
export const JOIN_TOKEN_ENV = 'SVIDKIT_AGENT_JOIN_TOKEN';
/** Most workloads one agent delivers files for. */
export const MAX_WORKLOADS = 1000;
/** Most JWT-SVID audiences per workload: what one request to the CA may ask for. */
export const MAX_JWT_AUDIENCES = MAX_AUDIENCES;
/** Default projected service-account token path for `attestation.k8s_psat`. */
export const DEFAULT_PSAT_TOKEN_FILE = '/var/run/secrets/tokens/svidkit-agent';
/** Highest uid or gid accepted (2^31 − 1). */
export const MAX_ID = 2 ** 31 - 1;

export { DEFAULT_FILE_NAMES, type FileNames };

// YAML key -> FileNames property.
const FILE_NAME_KEYS = [
  ['svid', 'svid'],
  ['key', 'key'],
  ['bundle', 'bundle'],
  ['spiffe_bundle', 'spiffeBundle'],
  ['jwt_bundle', 'jwtBundle'],
  ['jwt_dir', 'jwtDir'],
  ['meta', 'meta'],
] as const;

/** What the agent does after it has replaced a workload's files (the shape runReload in reload.ts takes). */
export type ReloadAction =
  | {
      readonly signal: {
        readonly pidFile: string;
        readonly signal: NodeJS.Signals;
        /** The uid the signalled process must run as; unset: the workload's `uid`. */
        readonly uid?: number;
      };
    }
  | {
      readonly exec: {
        readonly command: readonly string[];
        readonly timeoutMs: number;
        /** NAME=value entries of the command's environment besides PATH; nothing of the agent's own is passed. */
        readonly env?: readonly string[];
      };
    };

/** Most `reload.exec.env` entries. */
export const MAX_RELOAD_ENV = 32;

/** One workload whose SVID, key, bundles and JWT-SVIDs the agent keeps fresh on disk. */
export interface WorkloadConfig {
  /** Position in `workloads`, for messages (`workloads[3]`). */
  readonly index: number;
  readonly spiffeId: SpiffeId;
  /** Absolute path of the directory the files are written to. */
  readonly outputDir: string;
  /** Owner and group of the written files; unset keeps the agent's own. */
  readonly uid?: number;
  readonly gid?: number;
  /** Permission bits of the certificate and bundle files. */
  readonly certMode: number;
  /** Permission bits of the private key file; never readable by others. */
  readonly keyMode: number;
  readonly keyType: KeyType;
  readonly jwtAudiences: readonly string[];
  readonly fileNames: FileNames;
  readonly reload?: ReloadAction;
}

/**
 * How the agent proves its node to the CA. A join token is kept off every enumerable property, so
 * logging or JSON-encoding the configuration never shows it; read it as `attestation.token`.
 */
export type AgentAttestation =
  | {
      readonly method: 'join_token';
      /** Not enumerable: a spread or structuredClone drops it. */
      readonly token: string;
    }
  | { readonly method: 'join_token_file'; readonly tokenFile: string }
  | { readonly method: 'k8s_psat'; readonly tokenFile: string; readonly cluster?: string };

/** The whole, validated agent configuration. */
export interface AgentConfig {
  readonly trustDomain: TrustDomain;
  /** The agent's own SVID, key and bundle live here (the agent creates it 0700). */
  readonly dataDir: string;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  readonly ca: {
    /** `host:port` as configured. */
    readonly address: string;
    readonly host: string;
    readonly port: number;
    /** TLS server name (SNI) sent to the CA. */
    readonly serverName: string;
    /** The only SPIFFE ID the CA's serving certificate may carry: `spiffe://<td>/svidkit/ca`. */
    readonly spiffeId: SpiffeId;
    /** Roots that authenticate the CA on first contact. */
    readonly bundleFile: string;
  };
  readonly attestation: AgentAttestation;
  /** /metrics, /healthz and /readyz. */
  readonly observability: { readonly address: string; readonly port: number };
  readonly workloads: readonly WorkloadConfig[];
  /** Renewal at `fraction` of the lifetime, ± `jitter` of that (see renewalTime). */
  readonly rotation: { readonly fraction: number; readonly jitter: number };
  /** Waits between retries after a failure (see backoffDelay). */
  readonly backoff: { readonly minMs: number; readonly maxMs: number };
  /** How often the agent asks the CA which entries it may fetch (new and deleted entries show up then). */
  readonly entrySyncMs: number;
  /** The SPIFFE Workload API socket and its bounds; absent when it is off. */
  readonly workloadApi?: WorkloadApiConfig;
  /** Things the agent must log loudly at start (e.g. insecure bootstrap). */
  readonly warnings: readonly string[];
}

/** Dotted keys that environment variables (SVIDKIT_AGENT_<KEY>) and flags may override. */
export const OVERRIDABLE_KEYS = [
  'trust_domain',
  'data_dir',
  'log_level',
  'ca.address',
  'ca.bundle_file',
  'ca.server_name',
  'attestation.join_token_file',
  'attestation.k8s_psat.token_file',
  'attestation.k8s_psat.cluster',
  'observability.address',
  'observability.port',
  'rotation.fraction',
  'rotation.jitter',
  'backoff.min',
  'backoff.max',
  'entry_sync_interval',
  'workload_api.socket_path',
] as const;

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// The raw value under `key` of a decoded mapping (or undefined).
function rawOf(v: unknown, key: string): unknown {
  return isMapping(v) ? v[key] : undefined;
}

function octal(mode: number): string {
  return '0' + mode.toString(8).padStart(3, '0');
}

const DNS_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Splits `host:port` or `[v6]:port`; the host is a DNS name or an IP address, the port 1-65535. */
function hostPort(value: string, path: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) bad(path, `"${value.slice(0, 64)}" is not host:port (port 1-65535)`);
  const host = m[1] ?? m[2]!;
  const ok =
    m[1] !== undefined ? isIP(host) === 6 : isIP(host) === 4 || (DNS_NAME.test(host) && !/^[\d.]+$/.test(host));
  if (!ok) {
    bad(path, `"${host.slice(0, 64)}" is not a DNS name or an IP address (IPv6 goes in brackets)`);
  }
  return { host, port };
}

/** A plain file name inside an output directory: no separators, not hidden behind `..` (the writer's own). */
function fileName(value: string, path: string): string {
  if (value.includes('/') || value.includes('\\') || value.includes('\0')) bad(path, 'must be a file name, not a path');
  if (value === '.' || value.startsWith('..'))
    bad(path, 'must not be "." or start with ".." (reserved for the writer)');
  if (Buffer.byteLength(value) > 255) bad(path, 'is longer than 255 bytes');
  return value;
}

const ATTESTATION_METHODS = ['join_token', 'join_token_file', 'k8s_psat'];

const WORKLOAD = cfg.mapping({
  spiffe_id: cfg.string(),
  output_dir: cfg.string(),
  uid: cfg.int(0, MAX_ID).optional(),
  gid: cfg.int(0, MAX_ID).optional(),
  cert_mode: cfg.fileMode().prefault('0644'),
  key_mode: cfg.fileMode().prefault('0600'),
  key_type: cfg.choice(KEY_TYPES).default('ec-p256'),
  jwt_audiences: cfg.strings(MAX_JWT_AUDIENCES),
  file_names: cfg.section(Object.fromEntries(FILE_NAME_KEYS.map(([k]) => [k, cfg.string().optional()]))),
  reload: cfg
    .exactlyOne(
      ['signal', 'exec'],
      () => 'needs exactly one of signal or exec',
      cfg.mapping(
        {
          signal: cfg
            .mapping({
              pid_file: cfg.string(),
              signal: cfg.string().default('SIGHUP'),
              uid: cfg.int(0, MAX_ID).optional(),
            })
            .optional(),
          exec: cfg
            .mapping({
              command: cfg.strings(256, 'must be a non-empty list: [program, args...]'),
              timeout: cfg.duration(S, 10 * MIN).prefault('30s'),
              env: cfg.strings(MAX_RELOAD_ENV),
            })
            .optional(),
        },
        // Only the kind that is set was ever read, so a null for the other one is an unknown key.
        ['signal', 'exec'],
      ),
    )
    .optional()
    .meta({ description: 'Exactly one of signal or exec.' }),
});

/** agent.yaml as a schema: keys, types, defaults and the bounds that do not depend on another key. */
export const AGENT_CONFIG_SCHEMA = cfg.section({
  trust_domain: cfg.string().default('example.org'),
  data_dir: cfg.string().default('./data/agent'),
  log_level: cfg.choice(['debug', 'info', 'warn', 'error']).default('info'),
  ca: cfg.section({
    address: cfg.string().default('127.0.0.1:8081'),
    // The CA's serving SVID always carries the DNS name "localhost"; the SPIFFE ID check is what matters.
    server_name: cfg.string().default('localhost'),
    bundle_file: cfg
      .string()
      .optional()
      .meta({ description: "Required: the CA's trust bundle, which authenticates the CA on first contact." }),
    insecure_bootstrap: cfg.bool().default(false),
  }),
  attestation: cfg
    .exactlyOne(
      ATTESTATION_METHODS,
      (found) =>
        `needs exactly one of join_token, join_token_file or k8s_psat (found ${found.length === 0 ? 'none' : found.join(', ')})`,
      cfg.section({
        join_token: cfg.string().optional(),
        join_token_file: cfg.string().optional(),
        k8s_psat: cfg
          .mapping({ token_file: cfg.string().default(DEFAULT_PSAT_TOKEN_FILE), cluster: cfg.string().optional() })
          .optional(),
      }),
    )
    .meta({ description: 'Required: exactly one of join_token, join_token_file or k8s_psat.' }),
  observability: cfg.section({ address: cfg.string().default('127.0.0.1'), port: cfg.int(0, 65535).default(8091) }),
  workloads: cfg.sections(MAX_WORKLOADS, WORKLOAD),
  rotation: cfg.section({ fraction: cfg.fraction(0.1, 0.9).prefault(0.5), jitter: cfg.fraction(0, 0.5).prefault(0.1) }),
  backoff: cfg.section({
    min: cfg.duration(100, MIN).prefault('1s'),
    max: cfg.duration(S, 10 * MIN).prefault('1m'),
  }),
  entry_sync_interval: cfg.duration(S, 10 * MIN).prefault('5s'),
  workload_api: WORKLOAD_API_SECTION,
});

type WorkloadInput = z.output<typeof WORKLOAD>;

// Whoever can write these files can swap the workload's identity or the roots it trusts.
function writers(mode: number): string | undefined {
  if ((mode & 0o022) === 0o022) return 'the group and other users';
  if (mode & 0o020) return 'the group (the middle digit)';
  return mode & 0o002 ? 'other users (the last digit)' : undefined;
}

/** The rules of one workload that the schema cannot say: its ID, who may touch its files, names. */
function parseWorkload(w: WorkloadInput, i: number, td: TrustDomain, baseDir: string): WorkloadConfig {
  const here = `workloads[${i}]`;
  const spiffeId = at(`${here}.spiffe_id`, () => SpiffeId.parse(w.spiffe_id));
  if (!spiffeId.memberOf(td)) bad(`${here}.spiffe_id`, `${w.spiffe_id} is not in trust domain ${td.name}`);
  if (spiffeId.isTrustDomainId()) bad(`${here}.spiffe_id`, 'needs a path: the trust domain ID is not a workload');
  // IDs under this path belong to svidkit itself (the CA, the agents); the CA refuses entries for them.
  if (isReservedPath(spiffeId.path)) {
    bad(`${here}.spiffe_id`, `is under ${RESERVED_PATH}/, which is reserved for svidkit's own identities`);
  }
  const { cert_mode: certMode, key_mode: keyMode } = w;
  const who = spiffeId.toString();
  const certWriters = writers(certMode);
  if (certWriters !== undefined) {
    bad(
      `${here}.cert_mode`,
      `${octal(certMode)} lets ${certWriters} write the SVID and bundle files of ${who}; use 0644 or 0640`,
    );
  }
  const keyWriters = writers(keyMode);
  if (keyWriters !== undefined) {
    bad(
      `${here}.key_mode`,
      `${octal(keyMode)} lets ${keyWriters} write the private key and JWT-SVID files of ${who}; use 0600 or 0640`,
    );
  }
  if ((keyMode & 0o007) !== 0) {
    bad(
      `${here}.key_mode`,
      `${octal(keyMode)} gives other users (the last digit) access to the private key of ${who}; use 0600 or 0640`,
    );
  }
  if ((keyMode & 0o440) === 0) {
    bad(`${here}.key_mode`, `${octal(keyMode)} lets no one read the private key of ${who}`);
  }

  const seenAud = new Map<string, number>();
  const seenFile = new Map<string, number>();
  for (const [j, aud] of w.jwt_audiences.entries()) {
    // Each audience becomes a file name under the JWT directory, so keep it printable and short.
    if (aud.length > 255 || [...aud].some((c) => c < ' ' || c === '\u007f')) {
      bad(`${here}.jwt_audiences[${j}]`, 'must be at most 255 printable characters');
    }
    const prev = seenAud.get(aud);
    if (prev !== undefined) bad(`${here}.jwt_audiences[${j}]`, `repeats ${here}.jwt_audiences[${prev}]`);
    seenAud.set(aud, j);
    // The writer refuses a token file name over 255 bytes or shared by two audiences, and with it the
    // whole workload's files, on every write: refuse such audiences here instead.
    const file = tokenFileName(aud);
    if (Buffer.byteLength(file) > 255) {
      bad(`${here}.jwt_audiences[${j}]`, `makes the token file name "${file.slice(0, 32)}..." longer than 255 bytes`);
    }
    const sameFile = seenFile.get(file);
    if (sameFile !== undefined) {
      bad(`${here}.jwt_audiences[${j}]`, `has the token file name "${file}" of ${here}.jwt_audiences[${sameFile}]`);
    }
    seenFile.set(file, j);
  }

  const names: Record<string, string> = { ...DEFAULT_FILE_NAMES };
  const byName = new Map<string, string>();
  for (const [yamlKey, prop] of FILE_NAME_KEYS) {
    const v = w.file_names[yamlKey];
    if (v !== undefined) names[prop] = fileName(v, `${here}.file_names.${yamlKey}`);
    const other = byName.get(names[prop]!);
    if (other !== undefined) {
      bad(`${here}.file_names.${yamlKey}`, `"${names[prop]}" is also the name of file_names.${other}`);
    }
    byName.set(names[prop]!, yamlKey);
  }

  return {
    index: i,
    spiffeId,
    outputDir: resolve(baseDir, w.output_dir),
    uid: w.uid,
    gid: w.gid,
    certMode,
    keyMode,
    keyType: w.key_type,
    jwtAudiences: Object.freeze([...w.jwt_audiences]),
    fileNames: Object.freeze(names) as unknown as FileNames,
    reload: w.reload && reloadAction(w.reload, here, baseDir),
  };
}

/** `reload`: exactly one of signal or exec, with a known signal name or a well-formed command and env. */
function reloadAction(r: NonNullable<WorkloadInput['reload']>, here: string, baseDir: string): ReloadAction {
  if (r.signal !== undefined) {
    const { pid_file, signal, uid } = r.signal;
    if (!Object.hasOwn(osConstants.signals, signal)) {
      bad(`${here}.reload.signal.signal`, `"${signal.slice(0, 16)}" is not a signal name such as SIGHUP or SIGUSR1`);
    }
    // Keys only when set, so an entry without them compares equal to one written without them.
    const pidFile = resolve(baseDir, pid_file);
    return { signal: { pidFile, signal: signal as NodeJS.Signals, ...(uid === undefined ? {} : { uid }) } };
  }
  const { timeout: timeoutMs, env } = r.exec!;
  const command = [...r.exec!.command];
  // No shell: the list is the argv. A relative program path is taken from baseDir like every path here;
  // a bare name is looked up in PATH.
  if (command[0]!.includes('/') && !isAbsolute(command[0]!)) command[0] = resolve(baseDir, command[0]!);
  const names = new Map<string, number>();
  for (const [j, entry] of env.entries()) {
    const name = /^([A-Za-z_][A-Za-z0-9_]{0,127})=/.exec(entry)?.[1];
    if (name === undefined || entry.length > 4096 || entry.includes('\0')) {
      bad(
        `${here}.reload.exec.env[${j}]`,
        'must be NAME=value with a name of letters, digits and _, at most 4096 characters',
      );
    }
    const prev = names.get(name);
    if (prev !== undefined) bad(`${here}.reload.exec.env[${j}]`, `sets ${name} again (see env[${prev}])`);
    names.set(name, j);
  }
  return {
    exec: { command: Object.freeze(command), timeoutMs, ...(env.length === 0 ? {} : { env: Object.freeze([...env]) }) },
  };
}

/** Refuses workloads that share an ID or an output directory, or whose directories overlap. */
function checkOverlaps(workloads: readonly WorkloadConfig[], dataDir: string): void {
  const byId = new Map<string, number>();
  const byDir = new Map<string, number>();
  for (const w of workloads) {
    const here = `workloads[${w.index}]`;
    const id = w.spiffeId.toString();
    const sameId = byId.get(id);
    if (sameId !== undefined) bad(`${here}.spiffe_id`, `${id} is also workloads[${sameId}].spiffe_id`);
    byId.set(id, w.index);
    const sameDir = byDir.get(w.outputDir);
    if (sameDir !== undefined) {
      bad(`${here}.output_dir`, `${w.outputDir} is also workloads[${sameDir}].output_dir`);
    }
    byDir.set(w.outputDir, w.index);
    // The agent's own key must never land where a workload (or its file writer) can reach it.
    if (isWithin(dataDir, w.outputDir) || isWithin(w.outputDir, dataDir)) {
      bad(`${here}.output_dir`, `${w.outputDir} overlaps data_dir (${dataDir}), where the agent keeps its own key`);
    }
  }
  // One directory inside another: each writer swaps its directory's contents as a whole, so nesting
  // would let one workload's files be replaced or read through another's. Walk each path's parents.
  for (const w of workloads) {
    for (let p = dirname(w.outputDir); ; p = dirname(p)) {
      const outer = byDir.get(p);
      if (outer !== undefined) {
        bad(
          `workloads[${w.index}].output_dir`,
          `${w.outputDir} is inside workloads[${outer}].output_dir (${p}); give each workload its own directory`,
        );
      }
      if (p === dirname(p)) break;
    }
  }
}

/** Builds the configuration from a decoded document; throws ERR_CONFIG naming the first bad key. */
export function parseAgentConfig(doc: unknown, baseDir = process.cwd()): AgentConfig {
  const c = parseWithSchema(AGENT_CONFIG_SCHEMA, doc);
  // The rules the schema cannot say, in one place: names that must parse, keys that exclude or bound
  // each other, and paths that must not overlap.
  const trustDomain = at('trust_domain', () => TrustDomain.parse(c.trust_domain));
  const dataDir = resolve(baseDir, c.data_dir);

  const { host, port } = hostPort(c.ca.address, 'ca.address');
  const serverName = c.ca.server_name;
  if (isIP(serverName) || !DNS_NAME.test(serverName)) {
    bad('ca.server_name', `"${serverName.slice(0, 64)}" is not a DNS name (TLS server names cannot be IP addresses)`);
  }
  // Trust on first use is refused outright: a node must know its CA before it talks to it.
  if (c.ca.insecure_bootstrap) {
    bad('ca.insecure_bootstrap', 'is not supported: svidkit never trusts a CA on first use; set ca.bundle_file');
  }
  if (c.ca.bundle_file === undefined) {
    bad('ca.bundle_file', "is required: the CA's trust bundle authenticates the CA on first contact");
  }
  const ca = {
    address: c.ca.address,
    host,
    port,
    serverName,
    spiffeId: caServerId(trustDomain),
    bundleFile: resolve(baseDir, c.ca.bundle_file),
  };

  const { join_token: token, join_token_file: tokenFile, k8s_psat: psat } = c.attestation;
  let attestation: AgentAttestation;
  if (token !== undefined) {
    at('attestation.join_token', () => validateJoinToken(token));
    attestation = secretToken(token);
  } else if (tokenFile !== undefined) {
    attestation = { method: 'join_token_file', tokenFile: resolve(baseDir, tokenFile) };
  } else {
    const cluster = psat!.cluster;
    // The CA puts the cluster name into agent IDs, so it must be a SPIFFE path segment there too.
    if (cluster !== undefined) at('attestation.k8s_psat.cluster', () => validatePathSegment(cluster));
    attestation = { method: 'k8s_psat', tokenFile: resolve(baseDir, psat!.token_file), cluster };
  }

  const workloads = c.workloads.map((w, i) => parseWorkload(w, i, trustDomain, baseDir));
  checkOverlaps(workloads, dataDir);

  const { fraction, jitter } = c.rotation;
  if (fraction * (1 + jitter) > 0.95) {
    bad('rotation.jitter', `fraction × (1 + jitter) is ${(fraction * (1 + jitter)).toFixed(3)}; keep it at most 0.95`);
  }
  const { min: minMs, max: maxMs } = c.backoff;
  if (maxMs < minMs) bad('backoff.max', `must not be shorter than backoff.min (${minMs / 1000}s)`);

  const workloadApi = parseWorkloadApi(c.workload_api, baseDir, {
    dataDir,
    outputDirs: workloads.map((w) => ({ key: `workloads[${w.index}].output_dir`, dir: w.outputDir })),
  });

  return {
    trustDomain,
    dataDir,
    logLevel: c.log_level,
    ca,
    attestation,
    observability: c.observability,
    workloads: Object.freeze(workloads),
    rotation: { fraction, jitter },
    backoff: { minMs, maxMs },
    entrySyncMs: c.entry_sync_interval,
    ...(workloadApi ? { workloadApi } : {}),
    warnings: Object.freeze([]),
  };
}

function secretToken(token: string): AgentAttestation {
  const a = { method: 'join_token' as const };
  // Not enumerable: JSON.stringify, util.inspect and pino leave it out.
  Object.defineProperty(a, 'token', { value: token, enumerable: false });
  return a as AgentAttestation;
}

/**
 * YAML 1.2 reads an unquoted `key_mode: 0600` as the decimal number 600, and `0400` as 400 (which is
 * 0o620). Everyone who writes a leading zero means octal, so the loader looks at how each workload's
 * mode was spelt in the file and hands such literals to the parser as the octal strings they are.
 */
async function keepOctalLiterals(file: string, doc: unknown): Promise<void> {
  const list = rawOf(doc, 'workloads');
  const numeric = (w: unknown) => typeof rawOf(w, 'cert_mode') === 'number' || typeof rawOf(w, 'key_mode') === 'number';
  if (!Array.isArray(list) || !list.some(numeric)) return;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new SvidkitError('ERR_CONFIG', `config: cannot read ${file} (${code})`, { cause: err });
  }
  const seq = parseDocument(text, { uniqueKeys: true }).get('workloads', true);
  if (!isSeq(seq)) return;
  for (const [i, item] of seq.items.entries()) {
    const target = list[i];
    if (!isMap(item) || !isMapping(target)) continue;
    for (const key of ['cert_mode', 'key_mode']) {
      const node = item.get(key, true);
      if (
        isScalar(node) &&
        node.type === 'PLAIN' &&
        typeof target[key] === 'number' &&
        /^0[0-7]+$/.test(node.source ?? '')
      ) {
        target[key] = node.source;
      }
    }
  }
}

/** Puts a join token from SVIDKIT_AGENT_JOIN_TOKEN in place of the file's join token settings. */
function withEnvToken(doc: Record<string, unknown>, token: string): Record<string, unknown> {
  const att = doc['attestation'];
  if (att !== undefined && att !== null && !isMapping(att)) return doc; // the parser refuses it
  const next: Record<string, unknown> = { ...(att ?? {}) };
  if (next['k8s_psat'] !== undefined && next['k8s_psat'] !== null) {
    bad('attestation', `${JOIN_TOKEN_ENV} is set but attestation.k8s_psat is configured; use one method`);
  }
  delete next['join_token_file'];
  next['join_token'] = token;
  return { ...doc, attestation: next };
}

/**
 * Reads the YAML file (if any), applies SVIDKIT_AGENT_* environment variables (and the join token from
 * SVIDKIT_AGENT_JOIN_TOKEN, which replaces join_token or join_token_file from the file), then flags.
 * Errors name the file as well as the key.
 */
export async function loadAgentConfig(options: {
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  flags?: ReadonlyMap<string, string>;
  baseDir?: string;
}): Promise<AgentConfig> {
  const file = options.configFile;
  const env = options.env ?? {};
  const doc = await readConfigFile(file);
  try {
    if (file !== undefined) await keepOctalLiterals(file, doc);
    let merged = applyOverrides(doc, envOverrides(ENV_PREFIX, OVERRIDABLE_KEYS, env));
    const token = env[JOIN_TOKEN_ENV];
    if (token !== undefined && token !== '') merged = withEnvToken(merged, token);
    merged = applyOverrides(merged, options.flags ?? new Map());
    return parseAgentConfig(merged, options.baseDir);
  } catch (err) {
    if (file === undefined || !isSvidkitError(err, 'ERR_CONFIG') || err.message.includes(file)) throw err;
    throw new SvidkitError('ERR_CONFIG', `config: ${file}: ${err.plainMessage}`, {
      cause: err,
      detail: { ...err.detail, file },
    });
  }
}
