/**
 * The agent's settings, options, events and the views it gives its daemon and its Workload API server:
 * the contract of lib/agent/agent.ts, apart from its loop.
 */
import type { SpiffeBundle } from '../bundle/index.js';
import type { Logger } from '../observe/index.js';
import type { TrustDomain } from '../spiffeid/index.js';
import type { ApiIdentitiesView, RotationStatus } from './api-identities.js';
import type { WorkloadConfig } from './config.js';
import type { WriterFs } from './writer.js';

/** One workload the agent keeps files for: the validated configuration entry. */
export type WorkloadSettings = Omit<WorkloadConfig, 'index'>;

/** How the agent proves the node's identity. */
export type AttestationSettings =
  | { readonly joinToken: () => Promise<string> }
  | { readonly k8sPsat: { readonly tokenFile: string; readonly cluster?: string } };

/** Everything the agent needs, already validated. */
export interface AgentSettings {
  readonly trustDomain: TrustDomain;
  readonly dataDir: string;
  readonly caAddress: string;
  readonly caServerName: string;
  /** PEM or SPIFFE bundle that the CA's certificate must chain to on first contact (never trust on first use). */
  readonly bootstrapBundle: string;
  readonly attestation: AttestationSettings;
  readonly workloads: readonly WorkloadSettings[];
  readonly rotationFraction: number;
  readonly rotationJitter: number;
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  /** How often authorized entries are refetched. */
  readonly entrySyncMs?: number;
}

/** What the agent reports for one workload. */
export interface WorkloadStatus extends RotationStatus {
  readonly spiffeId: string;
  readonly outputDir: string;
  readonly entryId?: string;
}

/** Hooks for metrics; the daemon wires them to Prometheus. */
export interface AgentEvents {
  rotated?(spiffeId: string): void;
  failed?(spiffeId: string, reason: string): void;
  caReachable?(up: boolean): void;
  reloaded?(spiffeId: string, ok: boolean): void;
}

/** The Workload API's server streams, as the open-streams metric labels them. */
export const WORKLOAD_API_STREAM_RPCS = ['FetchX509SVID', 'FetchX509Bundles', 'FetchJWTBundles'] as const;

/** One of WORKLOAD_API_STREAM_RPCS. */
export type WorkloadApiStreamRpc = (typeof WORKLOAD_API_STREAM_RPCS)[number];

/**
 * Why the Workload API refused a connection or a call: a closed set, so that a metric label never
 * carries what a caller controls (its SPIFFE ID, uid, pid or path).
 */
export const WORKLOAD_API_REFUSALS = [
  'too_many_connections',
  'no_credentials',
  'no_header',
  'unknown_connection',
  'attest_failed',
  'caller_changed',
  'no_identity',
  'resource_exhausted',
] as const;

/** One of WORKLOAD_API_REFUSALS. */
export type WorkloadApiRefusal = (typeof WORKLOAD_API_REFUSALS)[number];

/** Hooks for the Workload API server's metrics; the daemon wires them to Prometheus. */
export interface WorkloadApiEvents {
  /** A server stream sent its first message and now follows changes. */
  streamOpened?(rpc: WorkloadApiStreamRpc): void;
  /** A stream that streamOpened announced ended, whatever the reason. */
  streamClosed?(rpc: WorkloadApiStreamRpc): void;
  /** A connection or a call was refused. */
  refused?(reason: WorkloadApiRefusal): void;
  /** `count` SVIDs were sent to a caller (each X.509 message counts every SVID in it). */
  served?(kind: 'x509' | 'jwt', count: number): void;
}

/** Shortest time between two entry syncs that Workload API callers ask for. */
export const MIN_FORCED_SYNC_MS = 1000;

/** The agent as the Workload API server sees it. */
export interface AgentWorkloadApi {
  readonly identities: ApiIdentitiesView;
  readonly trustDomain: TrustDomain;
  /** The agent's clock (injected in tests), for validating tokens. */
  readonly clock: () => Date;
  /** The trust domain's current bundle; undefined before the first attestation. */
  bundle(): SpiffeBundle | undefined;
  /** A JWT-SVID of an entry for the audiences, cached until its renewal time. */
  jwtSvid(entryId: string, audience: readonly string[]): Promise<string>;
  /** See Agent.requestEntrySync. */
  requestEntrySync(): Promise<void>;
}

/** Options of Agent.start. */
export interface AgentOptions {
  readonly logger: Logger;
  readonly clock?: () => Date;
  readonly rand?: () => number;
  readonly events?: AgentEvents;
  /** File-system calls used to deliver files; tests inject faults (ENOSPC, EACCES) through it. */
  readonly writerFs?: WriterFs;
}
