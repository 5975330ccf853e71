/**
 * The node agent: proves the node's identity to the CA, follows the bundle and the node's registration
 * entries, and keeps two kinds of identities fresh: the file workloads of its configuration (files and
 * reload actions, lib/agent/file-workloads.ts) and the Workload API's, in memory
 * (lib/agent/api-identities.ts). One loop decides what is due and mints both in the same CSR batches;
 * CA failures back off with jitter while the files already on disk stay in place.
 */
import { readFile } from 'node:fs/promises';
import { status as grpcStatus } from '@grpc/grpc-js';
import { parseBundleDocument, SpiffeBundle } from '../bundle/index.js';
import { isSvidkitError } from '../errors/index.js';
import { generateKeyPair } from '../keys/index.js';
import type { Logger } from '../observe/index.js';
import { SpiffeId } from '../spiffeid/index.js';
import { Certificate, CertificateCache } from '../x509/certificate.js';
import { buildCsr } from '../x509/csr.js';
import { X509Svid } from '../x509svid/index.js';
import { type AuthorizedEntry, CaCallError, CaClient, readAuthorizedEntries } from './ca-client.js';
import { API_KEY_TYPE, ApiIdentities } from './api-identities.js';
import { ApiJwtCache } from './api-jwt.js';
import { FileWorkloads } from './file-workloads.js';
import { mintX509 } from './mint.js';
import { Backoff, renewalTime, type TokenRenewalPolicy } from './schedule.js';
import { AgentState } from './state.js';
import { checkPrivateDir } from './trust.js';
import {
  type AgentEvents,
  type AgentOptions,
  type AgentSettings,
  type AgentWorkloadApi,
  MIN_FORCED_SYNC_MS,
  type WorkloadStatus,
} from './agent-types.js';
import { caServerId } from '../ca-api/index.js';
import type { Bundle__Output } from '../ca-api/index.js';

export type {
  AgentEvents,
  AgentOptions,
  AgentSettings,
  AgentWorkloadApi,
  AttestationSettings,
  WorkloadSettings,
  WorkloadStatus,
} from './agent-types.js';
export { MIN_FORCED_SYNC_MS } from './agent-types.js';

/** A running agent. */
export class Agent {
  readonly #s: AgentSettings;
  readonly #log: Logger;
  readonly #clock: () => Date;
  readonly #rand: () => number;
  readonly #events: AgentEvents;
  readonly #state: AgentState;
  readonly #client: CaClient;
  readonly #files: FileWorkloads;
  readonly #backoff: Backoff;
  readonly #watchBackoff: Backoff;
  readonly #intermediates = new CertificateCache();
  #identity: X509Svid | undefined;
  #identityRenewAt = 0;
  #bundle: SpiffeBundle | undefined;
  #bootstrapRoots: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #watchTimer: NodeJS.Timeout | undefined;
  #cancelWatch: (() => void) | undefined;
  #lastEntrySync = 0;
  #entries: readonly AuthorizedEntry[] = [];
  /** Refused entries already logged ("id reason"), so a sync every few seconds does not repeat them. */
  #refusedLogged = new Set<string>();
  /** Identities of the entries with selectors, served over the Workload API (in memory only). */
  readonly #api = new ApiIdentities();
  readonly #apiJwt: ApiJwtCache;
  /** Callers waiting for an entry sync they asked for (a Workload API caller no entry matched yet). */
  #syncWaiters: (() => void)[] = [];
  #forceSync = false;
  #lastForcedSync = -Infinity;
  #running = false;
  #stopped = false;
  #loop: Promise<void> = Promise.resolve();

  private constructor(s: AgentSettings, o: AgentOptions) {
    this.#s = s;
    this.#log = o.logger;
    this.#clock = o.clock ?? (() => new Date());
    this.#rand = o.rand ?? Math.random;
    this.#events = o.events ?? {};
    this.#state = new AgentState(s.dataDir);
    this.#backoff = new Backoff(this.#rand, s.backoffMinMs, s.backoffMaxMs);
    this.#watchBackoff = new Backoff(this.#rand, s.backoffMinMs, s.backoffMaxMs);
    this.#files = new FileWorkloads(s.workloads, {
      log: o.logger,
      events: this.#events,
      writerFs: o.writerFs,
      clock: this.#clock,
      rand: this.#rand,
      backoffMinMs: s.backoffMinMs,
      renewAt: (cert) => this.#renewAt(cert),
      tokenPolicy: this.#tokenPolicy(),
      describe,
    });
    this.#client = new CaClient({
      address: s.caAddress,
      caId: caServerId(s.trustDomain),
      serverName: s.caServerName,
      roots: () => this.#roots(),
      identity: () =>
        this.#identity
          ? { certificatePem: this.#identity.certificatesPem(), privateKeyPem: this.#identity.privateKeyPem() }
          : undefined,
    });
    this.#apiJwt = new ApiJwtCache(
      async (entryId, audience) => (await this.#client.newJwt(entryId, [...audience])).token,
      () => this.#now(),
      this.#tokenPolicy(),
    );
  }

  /** Starts the agent: loads its state and begins the loop (which attests or renews as needed). */
  static async start(settings: AgentSettings, options: AgentOptions): Promise<Agent> {
    const agent = new Agent(settings, options);
    await agent.#init();
    return agent;
  }

  async #init(): Promise<void> {
    await this.#state.init();
    await checkPrivateDir(this.#s.dataDir);
    // Every output directory is checked, and pinned to its real path, before anything is written.
    await this.#files.resolveDirs(this.#s.dataDir);
    const set = parseBundleDocument(this.#s.bootstrapBundle, this.#s.trustDomain);
    this.#bootstrapRoots = set.getX509BundleForTrustDomain(this.#s.trustDomain)?.toPem();
    this.#bundle = await this.#state.loadBundle(this.#s.trustDomain);
    const id = await this.#state.loadIdentity();
    if (id && id.expiresAt.getTime() > this.#now()) {
      this.#identity = id;
      this.#identityRenewAt = this.#renewAt(id.leaf);
      this.#log.info(
        { agent: id.id.toString(), expires_at: id.expiresAt.toISOString() },
        'agent SVID loaded from the data dir',
      );
    }
    this.#running = true;
    this.#schedule(0);
  }

  #now(): number {
    return this.#clock().getTime();
  }

  #renewAt(cert: Certificate): number {
    // The CA backdates notBefore by 30 s for clock skew; counting the lifetime from there would make a
    // short-lived SVID due again at once. The lifetime starts when we received it.
    const start = new Date(Math.min(Math.max(cert.notBefore.getTime(), this.#now()), cert.notAfter.getTime()));
    return renewalTime(start, cert.notAfter, this.#rand, this.#s.rotationFraction, this.#s.rotationJitter).getTime();
  }

  #tokenPolicy(): TokenRenewalPolicy {
    const s = this.#s;
    return { rand: this.#rand, fraction: s.rotationFraction, jitter: s.rotationJitter, minRetryMs: s.backoffMinMs };
  }

  #roots(): string {
    const fromBundle = this.#bundle?.x509.toPem();
    if (fromBundle) return fromBundle;
    return this.#bootstrapRoots ?? '';
  }

  #schedule(delayMs: number): void {
    if (!this.#running) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(
      () => {
        this.#loop = this.#loop
          .then(() => this.#tick())
          .catch((err: unknown) => this.#log.error({ err }, 'agent loop failed'));
      },
      Math.max(0, delayMs),
    );
    this.#timer.unref?.();
  }

  async #tick(): Promise<void> {
    if (!this.#running) return;
    try {
      await this.#ensureIdentity();
      this.#events.caReachable?.(true);
      this.#ensureWatch();
      this.#api.dropExpired(this.#now());
      const forced = this.#forceSync;
      if (forced || this.#now() - this.#lastEntrySync >= (this.#s.entrySyncMs ?? 30_000)) {
        this.#forceSync = false;
        if (forced) this.#lastForcedSync = this.#now();
        await this.#syncEntries();
      }
      await this.#rotateDue();
      this.#backoff.reset();
      this.#releaseSyncWaiters();
      this.#schedule(this.#nextWakeup());
    } catch (err) {
      this.#releaseSyncWaiters();
      const reachable = !(err instanceof CaCallError) || err.grpcCode !== grpcStatus.UNAVAILABLE;
      this.#events.caReachable?.(
        reachable && !(err instanceof CaCallError && err.grpcCode === grpcStatus.DEADLINE_EXCEEDED),
      );
      const delay = this.#backoff.next();
      this.#log.warn(
        { reason: describe(err), retry_in_ms: delay },
        'agent: CA step failed; files on disk stay in place',
      );
      this.#schedule(delay);
    }
  }

  #nextWakeup(): number {
    const now = this.#now();
    const next = Math.min(
      this.#identityRenewAt,
      this.#lastEntrySync + (this.#s.entrySyncMs ?? 30_000),
      this.#api.nextRenewal(),
      this.#files.nextDue(),
    );
    return Math.min(Math.max(next - now, 0), 60_000);
  }

  async #ensureIdentity(): Promise<void> {
    const now = this.#now();
    if (this.#identity && this.#identity.expiresAt.getTime() <= now) {
      // After a long outage the agent's own SVID expired: attest again by itself instead of staying broken.
      this.#log.warn({ agent: this.#identity.id.toString() }, 'agent SVID expired; attesting again');
      this.#identity = undefined;
    }
    if (!this.#identity) {
      await this.#attest();
      return;
    }
    if (now >= this.#identityRenewAt) {
      const key = generateKeyPair();
      try {
        const res = await this.#client.renew(buildCsr({ key: key.privateKey }));
        await this.#adoptIdentity(res.svid!.certChain, key.privateKey);
      } catch (err) {
        if (
          err instanceof CaCallError &&
          (err.grpcCode === grpcStatus.PERMISSION_DENIED || err.grpcCode === grpcStatus.UNAUTHENTICATED)
        ) {
          this.#log.warn({ reason: err.message }, 'agent renewal refused; attesting again');
          this.#identity = undefined;
          await this.#attest();
          return;
        }
        throw err;
      }
    }
  }

  async #attest(): Promise<void> {
    const key = generateKeyPair();
    const csr = buildCsr({ key: key.privateKey });
    const a = this.#s.attestation;
    // The Kubernetes token is re-read every time: the kubelet rotates it.
    const credential =
      'joinToken' in a
        ? { joinToken: await a.joinToken() }
        : { k8sPsat: { token: (await readFile(a.k8sPsat.tokenFile, 'utf8')).trim(), cluster: a.k8sPsat.cluster } };
    const res = await this.#client.attest(credential, csr);
    const bundle = SpiffeBundle.parse(this.#s.trustDomain, res.bundle!.spiffeBundleJson);
    this.#bundle = bundle;
    await this.#state.saveBundle(bundle);
    await this.#adoptIdentity(res.svid!.certChain, key.privateKey);
    this.#log.info({ agent: this.#identity!.id.toString() }, 'agent attested');
  }

  async #adoptIdentity(chain: Buffer[], key: import('node:crypto').KeyObject): Promise<void> {
    const svid = X509Svid.fromParts(
      chain.map((d) => Certificate.fromDer(d)),
      key,
    );
    this.#identity = svid;
    this.#identityRenewAt = this.#renewAt(svid.leaf);
    await this.#state.saveIdentity(svid);
  }

  #ensureWatch(): void {
    if (this.#cancelWatch || this.#watchTimer) return;
    this.#cancelWatch = this.#client.watchBundle(
      (b) => this.#onBundle(b),
      (err) => {
        this.#cancelWatch = undefined;
        if (!this.#running) return;
        const delay = this.#watchBackoff.next();
        if (err) this.#log.warn({ reason: err.message, retry_in_ms: delay }, 'bundle stream ended');
        this.#watchTimer = setTimeout(() => {
          this.#watchTimer = undefined;
          if (this.#identity) this.#ensureWatch();
        }, delay);
        this.#watchTimer.unref?.();
      },
    );
  }

  #onBundle(msg: Bundle__Output): void {
    this.#watchBackoff.reset();
    let bundle: SpiffeBundle;
    try {
      bundle = SpiffeBundle.parse(this.#s.trustDomain, msg.spiffeBundleJson);
    } catch (err) {
      this.#log.error({ reason: describe(err) }, 'CA sent a bundle that does not parse; keeping the current one');
      return;
    }
    if (
      this.#bundle &&
      (bundle.sequence ?? 0) <= (this.#bundle.sequence ?? 0) &&
      this.#bundle.marshal() === bundle.marshal()
    )
      return;
    this.#bundle = bundle;
    this.#log.info({ sequence: bundle.sequence }, 'trust bundle updated');
    this.#files.markAllDirty();
    this.#api.notify();
    this.#loop = this.#loop
      .then(async () => {
        await this.#state.saveBundle(bundle);
        await this.#files.writeDirty(() => this.#bundle);
      })
      .catch((err: unknown) => this.#log.error({ err }, 'rewriting bundles failed'));
  }

  async #syncEntries(): Promise<void> {
    const { entries, refused } = readAuthorizedEntries(await this.#client.listEntries());
    const refusedNow = new Set<string>();
    for (const r of refused) {
      const key = `${r.id} ${r.reason}`;
      refusedNow.add(key);
      if (this.#refusedLogged.has(key)) continue;
      this.#log.warn(
        { entry_id: r.id, spiffe_id: r.spiffeId, reason: r.reason },
        'registration entry from the CA skipped',
      );
    }
    this.#refusedLogged = refusedNow;
    this.#entries = entries;
    this.#syncApiEntries(entries);
    this.#files.adoptEntries(entries);
    this.#lastEntrySync = this.#now();
  }

  async #rotateDue(): Promise<void> {
    const now = this.#now();
    const jobs = this.#files.mintJobs(now);
    // Workload API entries ride in the same batches; their SVIDs stay in memory.
    for (const e of this.#api.due(now)) {
      jobs.push({
        entryId: e.id,
        spiffeId: e.spiffeId,
        keyType: API_KEY_TYPE,
        done: (svid) => {
          this.#api.adopt(e.id, svid, this.#renewAt(svid.leaf));
          this.#log.info(
            {
              entry_id: e.id,
              spiffe_id: e.spiffeId.toString(),
              serial: svid.leaf.serialHex,
              expires_at: svid.expiresAt.toISOString(),
            },
            'Workload API SVID minted',
          );
        },
        failed: (reason) => {
          this.#api.failed(e.id, reason, this.#now() + this.#s.backoffMinMs * (1 + this.#rand()));
          this.#log.warn({ entry_id: e.id, spiffe_id: e.spiffeId.toString(), reason }, 'Workload API SVID not minted');
        },
      });
    }
    await mintX509(this.#client, jobs, this.#intermediates, describe);
    await this.#files.renewTokens((entryId, audience) => this.#client.newJwt(entryId, audience), now);
    await this.#files.writeDirty(() => this.#bundle);
  }

  #syncApiEntries(entries: readonly AuthorizedEntry[]): void {
    const api = entries
      .filter((e) => e.selectors.length > 0)
      .map((e) => ({ id: e.id, spiffeId: SpiffeId.parse(e.spiffeId), selectors: e.selectors, createdAt: e.createdAt }));
    const over = this.#api.setEntries(api);
    if (over > 0)
      this.#log.warn({ refused: over }, 'more Workload API entries than the agent holds; the newest are left out');
    this.#apiJwt.retain(new Set(api.map((e) => e.id)));
  }

  #releaseSyncWaiters(): void {
    const waiters = this.#syncWaiters;
    this.#syncWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Asks for an entry sync and the minting it leads to, at most once per MIN_FORCED_SYNC_MS whoever asks;
   * resolves when that pass is over (successful or not). For a Workload API caller that matches no entry
   * yet: a new pod's entry may not have reached the agent.
   */
  requestEntrySync(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => {
      this.#syncWaiters.push(resolve);
      if (this.#forceSync) return;
      this.#forceSync = true;
      this.#schedule(Math.max(0, this.#lastForcedSync + MIN_FORCED_SYNC_MS - this.#now()));
    });
  }

  /** What the Workload API server reads: the identities, their changes, the bundle, JWT-SVIDs. */
  get workloadApi(): AgentWorkloadApi {
    return {
      identities: this.#api,
      trustDomain: this.#s.trustDomain,
      clock: this.#clock,
      bundle: () => this.#bundle,
      jwtSvid: (entryId, audience) => this.#apiJwt.get(entryId, audience),
      requestEntrySync: () => this.requestEntrySync(),
    };
  }

  /** True when every configured workload has a valid SVID written to disk. */
  ready(): boolean {
    return this.#files.ready(this.#now());
  }

  /** The entries of this agent from the last sync with the CA, selectors included (empty before the first). */
  authorizedEntries(): readonly AuthorizedEntry[] {
    return this.#entries;
  }

  /** The agent's own SPIFFE ID, once attested. */
  get agentId(): SpiffeId | undefined {
    return this.#identity?.id;
  }

  /** Per-workload status. */
  status(): WorkloadStatus[] {
    return this.#files.status();
  }

  /** Expiry of each workload's SVID in seconds from now (for metrics). */
  secondsToExpiry(): Map<string, number> {
    return this.#files.secondsToExpiry(this.#now());
  }

  /** Stops the loop and the bundle stream; files on disk stay. */
  async close(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#running = false;
    clearTimeout(this.#timer);
    clearTimeout(this.#watchTimer);
    this.#cancelWatch?.();
    await this.#loop;
    await this.#files.close();
    this.#client.close();
  }
}

function describe(err: unknown): string {
  if (isSvidkitError(err)) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
