/**
 * The agent's file workloads: the workloads of agent.yaml, whose SVID, key, bundles and JWT-SVIDs are
 * written into their output directories. This class keeps their state and writes their files; the
 * agent's loop decides when, mints their X.509-SVIDs in its CSR batches (with the Workload API's
 * entries) and hands back the results. Only entries without selectors serve file workloads.
 */
import { realpath } from 'node:fs/promises';
import { BundleSet, type SpiffeBundle } from '../bundle/index.js';
import { parseInsecure } from '../jwtsvid/index.js';
import type { Logger } from '../observe/index.js';
import type { Certificate } from '../x509/certificate.js';
import type { X509Svid } from '../x509svid/index.js';
import type { AgentEvents, WorkloadSettings, WorkloadStatus } from './agent-types.js';
import { rotationStatus } from './api-identities.js';
import type { AuthorizedEntry } from './ca-client.js';
import type { MintJob } from './mint.js';
import { ReloadRunner } from './reload-runner.js';
import { tokenRenewalTime, type TokenRenewalPolicy } from './schedule.js';
import { checkNoOverlap, resolveOutputDir } from './trust.js';
import { type WriterFs, writeWorkloadFiles } from './writer.js';

interface Workload {
  readonly cfg: WorkloadSettings;
  /** The output directory's real path, checked at start (lib/agent/trust.ts); the writer opens it without following links. */
  dir: string;
  entryId?: string;
  svid?: X509Svid;
  jwt: Map<string, { token: string; renewAt: number; expiresAt: number }>;
  renewAt: number;
  version: number;
  rotations: number;
  failures: number;
  lastError?: string;
  /** Set when the bundle changed and the files must be rewritten even without a new SVID. */
  dirty: boolean;
  /** When a failed write of files already issued is tried again (no new SVID is needed for that). */
  writeRetryAt?: number;
  /** Runs the reload action off the loop; unset when none is configured. */
  readonly reload: ReloadRunner | undefined;
}

/** What the file workloads take from the agent. */
export interface FileWorkloadsContext {
  readonly log: Logger;
  readonly events: AgentEvents;
  readonly writerFs: WriterFs | undefined;
  readonly clock: () => Date;
  readonly rand: () => number;
  readonly backoffMinMs: number;
  /** When an SVID with this leaf is due for renewal (the agent's rotation policy). */
  renewAt(cert: Certificate): number;
  readonly tokenPolicy: TokenRenewalPolicy;
  /** A failure as one line for logs and status. */
  describe(err: unknown): string;
}

/** Mints a JWT-SVID of an entry for one audience (the CA's NewJWTSVID). */
export type NewJwt = (entryId: string, audience: string[]) => Promise<{ token: string }>;

/** The file workloads of one agent; see the file comment. */
export class FileWorkloads {
  readonly #c: FileWorkloadsContext;
  readonly #workloads: Workload[];

  constructor(settings: readonly WorkloadSettings[], context: FileWorkloadsContext) {
    this.#c = context;
    this.#workloads = settings.map((cfg) => ({
      cfg,
      dir: cfg.outputDir,
      jwt: new Map(),
      renewAt: 0,
      version: 0,
      rotations: 0,
      failures: 0,
      dirty: false,
      reload: cfg.reload ? this.#reloadRunner(cfg) : undefined,
    }));
  }

  #now(): number {
    return this.#c.clock().getTime();
  }

  /** Checks every output directory and pins it to its real path; none may overlap another or the data dir. */
  async resolveDirs(dataDir: string): Promise<void> {
    for (const w of this.#workloads) w.dir = await resolveOutputDir(w.cfg.outputDir, w.cfg);
    checkNoOverlap([
      { label: 'data_dir', dir: await realpath(dataDir) },
      ...this.#workloads.map((w, i) => ({ label: `workloads[${i}].output_dir`, dir: w.dir })),
    ]);
  }

  /** Matches each workload to its entry by SPIFFE ID; a new entry makes the workload due at once. */
  adoptEntries(entries: readonly AuthorizedEntry[]): void {
    // File workloads take entries without selectors only: selectors name the callers that may have
    // an entry's identity, and a file in a directory would hand it to anyone who can read it.
    const byId = new Map(entries.filter((e) => e.selectors.length === 0).map((e) => [e.spiffeId, e]));
    for (const w of this.#workloads) {
      const entry = byId.get(w.cfg.spiffeId.toString());
      if (!entry) {
        if (w.entryId !== undefined || w.lastError === undefined) {
          this.#c.log.warn(
            { workload: w.cfg.spiffeId.toString() },
            'no registration entry parented by this agent for the workload',
          );
        }
        w.entryId = undefined;
        w.lastError = 'no registration entry';
        continue;
      }
      if (w.entryId !== entry.id) w.renewAt = 0; // a new entry: issue now
      w.entryId = entry.id;
    }
  }

  /** The X.509-SVIDs due now, as jobs for the agent's CSR batches. */
  mintJobs(now: number): MintJob[] {
    return this.#workloads
      .filter((w) => w.entryId !== undefined && (!w.svid || now >= w.renewAt))
      .map((w) => ({
        entryId: w.entryId!,
        spiffeId: w.cfg.spiffeId,
        keyType: w.cfg.keyType,
        done: (svid) => {
          w.svid = svid;
          w.renewAt = this.#c.renewAt(svid.leaf);
          w.dirty = true;
        },
        failed: (reason) => this.#fail(w, reason),
      }));
  }

  /** Mints every JWT-SVID that is due, one audience per token as the files hold them. */
  async renewTokens(newJwt: NewJwt, now: number): Promise<void> {
    for (const w of this.#workloads) {
      if (w.entryId === undefined || !w.svid) continue;
      for (const aud of w.cfg.jwtAudiences) {
        const cur = w.jwt.get(aud);
        if (cur && now < cur.renewAt) continue;
        const res = await newJwt(w.entryId, [aud]);
        const parsed = parseInsecure(res.token); // our own token from the CA: only its times are read
        const renewAt = tokenRenewalTime(parsed.issuedAt, parsed.expiry, this.#now(), this.#c.tokenPolicy);
        w.jwt.set(aud, { token: res.token, renewAt, expiresAt: parsed.expiry.getTime() });
        w.dirty = true;
      }
    }
  }

  /** Marks every workload that has files for rewriting (the bundle changed). */
  markAllDirty(): void {
    for (const w of this.#workloads) if (w.svid) w.dirty = true;
  }

  /** Writes the files of every workload marked dirty, with the bundle current at each write. */
  async writeDirty(currentBundle: () => SpiffeBundle | undefined): Promise<void> {
    let bundleOf: SpiffeBundle | undefined;
    let bundles: BundleSet | undefined;
    for (const w of this.#workloads) {
      if (!w.dirty || !w.svid) continue;
      // The bundle is read per workload and the flag cleared before the write: a bundle that arrives
      // while this loop runs marks every workload again, and the next pass writes it to all of them.
      const bundle = currentBundle();
      if (!bundle) return;
      if (bundleOf !== bundle) {
        bundleOf = bundle;
        bundles = new BundleSet([bundle]);
      }
      w.dirty = false;
      try {
        await writeWorkloadFiles(
          {
            svid: w.svid,
            bundles: bundles!,
            jwtTokens: new Map([...w.jwt].map(([aud, j]) => [aud, j.token])),
            version: w.version + 1,
          },
          {
            dir: w.dir,
            names: w.cfg.fileNames,
            certMode: w.cfg.certMode,
            keyMode: w.cfg.keyMode,
            uid: w.cfg.uid,
            gid: w.cfg.gid,
            clock: this.#c.clock,
          },
          this.#c.writerFs,
        );
      } catch (err) {
        // The SVID is still good: only the write is tried again, not the issuance.
        w.dirty = true;
        w.writeRetryAt = this.#now() + this.#c.backoffMinMs * (1 + this.#c.rand());
        this.#recordFailure(w, this.#c.describe(err));
        continue;
      }
      w.version++;
      w.rotations++;
      w.writeRetryAt = undefined;
      w.lastError = undefined;
      this.#c.events.rotated?.(w.cfg.spiffeId.toString());
      this.#c.log.info(
        {
          workload: w.cfg.spiffeId.toString(),
          serial: w.svid.leaf.serialHex,
          expires_at: w.svid.expiresAt.toISOString(),
          version: w.version,
        },
        'workload files written',
      );
      // Not awaited: a slow or hanging reload must not hold the loop that rotates every other workload.
      w.reload?.request();
    }
  }

  /** The earliest time anything of a file workload is due (an SVID, a token, a write retry); Infinity if none. */
  nextDue(): number {
    let next = Infinity;
    for (const w of this.#workloads) {
      if (w.entryId === undefined) continue;
      next = Math.min(next, w.renewAt);
      if (w.dirty && w.writeRetryAt !== undefined) next = Math.min(next, w.writeRetryAt);
      for (const j of w.jwt.values()) next = Math.min(next, j.renewAt);
    }
    return next;
  }

  /** True when every workload has a valid SVID written to disk. */
  ready(now: number): boolean {
    return this.#workloads.every((w) => w.svid !== undefined && w.version > 0 && w.svid.expiresAt.getTime() > now);
  }

  /** Per-workload status. */
  status(): WorkloadStatus[] {
    return this.#workloads.map((w) => ({
      spiffeId: w.cfg.spiffeId.toString(),
      outputDir: w.cfg.outputDir,
      entryId: w.entryId,
      ...rotationStatus(w),
    }));
  }

  /** Expiry of each workload's SVID in seconds from `now`. */
  secondsToExpiry(now: number): Map<string, number> {
    return new Map(
      this.#workloads
        .filter((w) => w.svid)
        .map((w) => [w.cfg.spiffeId.toString(), (w.svid!.expiresAt.getTime() - now) / 1000]),
    );
  }

  /** Waits for running reload actions to end. */
  async close(): Promise<void> {
    await Promise.all(this.#workloads.map((w) => w.reload?.close()));
  }

  #reloadRunner(cfg: WorkloadSettings): ReloadRunner {
    const workload = cfg.spiffeId.toString();
    return new ReloadRunner(cfg.reload!, cfg.uid, (ok: boolean, detail: unknown) => {
      this.#c.events.reloaded?.(workload, ok);
      if (ok) this.#c.log.info({ workload, action: detail }, 'reload action fired');
      else this.#c.log.warn({ workload, reason: this.#c.describe(detail) }, 'reload action failed');
    });
  }

  #fail(w: Workload, reason: string): void {
    // Retry this workload after a short, jittered pause; its files on disk stay as they are.
    w.renewAt = this.#now() + this.#c.backoffMinMs * (1 + this.#c.rand());
    this.#recordFailure(w, reason);
  }

  #recordFailure(w: Workload, reason: string): void {
    w.failures++;
    w.lastError = reason;
    this.#c.events.failed?.(w.cfg.spiffeId.toString(), reason);
    this.#c.log.warn({ workload: w.cfg.spiffeId.toString(), reason }, 'workload rotation failed');
  }
}
