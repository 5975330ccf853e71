/**
 * The `workload_api` section of agent.yaml: where the agent serves the SPIFFE Workload API and the
 * bounds it keeps per caller. Off unless `socket_path` is set. Documented in docs/agent-config.md.
 */
import { Buffer } from 'node:buffer';
import { dirname, resolve } from 'node:path';
import { bad, cfg } from '../config/index.js';
import { isWithin } from './trust.js';

/** Longest Unix socket path the kernel binds (sun_path holds 108 bytes with the terminating NUL). */
export const MAX_SOCKET_PATH_BYTES = 107;
/** Default cap on a binary hashed for the unix:sha256 selector, in bytes. */
export const DEFAULT_MAX_BINARY_BYTES = 256 * 1024 * 1024;

/** The schema of the section. */
export const WORKLOAD_API_SECTION = cfg.section({
  socket_path: cfg.string().optional(),
  discover_path: cfg.bool().default(false),
  max_binary_size: cfg.int(1, 4 * 1024 * 1024 * 1024).default(DEFAULT_MAX_BINARY_BYTES),
  max_connections: cfg.int(1, 65_536).default(4096),
  max_streams_per_caller: cfg.int(1, 1024).default(64),
});

/** The validated section; absent when the Workload API is off. */
export interface WorkloadApiConfig {
  /** Absolute path of the Unix socket; its directory is created 0755 when missing. */
  readonly socketPath: string;
  /** Whether callers also get unix:path and unix:sha256 selectors from their binary. */
  readonly discoverPath: boolean;
  /** Largest binary hashed for unix:sha256; a larger one gets no sha256 selector. */
  readonly maxBinaryBytes: number;
  /** Open connections across all callers; more are refused at accept. */
  readonly maxConnections: number;
  /** Open streams of one uid; another stream beyond it gets RESOURCE_EXHAUSTED. */
  readonly maxStreamsPerCaller: number;
}

/** What the section is checked against: where the agent keeps its key and writes files. */
export interface PlacedPaths {
  readonly dataDir: string;
  readonly outputDirs: readonly { readonly key: string; readonly dir: string }[];
}

/** Checks the section; throws ERR_CONFIG naming the key. */
export function parseWorkloadApi(
  c: {
    socket_path?: string | undefined;
    discover_path: boolean;
    max_binary_size: number;
    max_connections: number;
    max_streams_per_caller: number;
  },
  baseDir: string,
  placed: PlacedPaths,
): WorkloadApiConfig | undefined {
  if (c.socket_path === undefined) return undefined;
  const key = 'workload_api.socket_path';
  const socketPath = resolve(baseDir, c.socket_path);
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    bad(key, `${socketPath} is longer than the ${MAX_SOCKET_PATH_BYTES} bytes a Unix socket path may have`);
  }
  // Every local user may connect, so the socket's directory is opened to them (0755): it must not be the
  // directory that holds the agent's own key.
  if (dirname(socketPath) === placed.dataDir) {
    bad(key, `${socketPath} is directly in data_dir, which must stay private; use a subdirectory such as public/`);
  }
  for (const o of placed.outputDirs) {
    if (isWithin(socketPath, o.dir)) bad(key, `${socketPath} is inside ${o.key} (${o.dir}), which the agent replaces`);
  }
  return {
    socketPath,
    discoverPath: c.discover_path,
    maxBinaryBytes: c.max_binary_size,
    maxConnections: c.max_connections,
    maxStreamsPerCaller: c.max_streams_per_caller,
  };
}
