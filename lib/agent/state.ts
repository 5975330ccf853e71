/**
 * The agent's own state in its data dir (0700): its SVID and key in one 0600 file, so that a crash can
 * never pair one version's certificate with another's key, and the last trust bundle it received. With
 * these a restarted agent renews over mTLS instead of attesting again.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SpiffeBundle } from '../bundle/index.js';
import { SvidkitError } from '../errors/index.js';
import type { TrustDomain } from '../spiffeid/index.js';
import { X509Svid } from '../x509svid/index.js';

/** File holding the agent's SVID chain and key. */
export const IDENTITY_FILE = 'agent_identity.json';
/** File holding the last trust bundle of the agent's trust domain. */
export const BUNDLE_FILE = 'trust_bundle.json';
const MAX_STATE_BYTES = 1024 * 1024;

/** Writes `data` to `path` through a temporary file, fsync and rename, with `mode` from the start. */
export async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const h = await open(tmp, 'wx', mode);
  try {
    await h.writeFile(data);
    await h.sync();
  } catch (err) {
    await h.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await h.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const dir = await open(join(path, '..'), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

async function readBounded(path: string): Promise<string | undefined> {
  try {
    const buf = await readFile(path);
    if (buf.length > MAX_STATE_BYTES) throw new SvidkitError('ERR_AGENT_STATE', `agent: ${path} is too large`);
    return buf.toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (err instanceof SvidkitError) throw err;
    throw new SvidkitError(
      'ERR_AGENT_STATE',
      `agent: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      {
        cause: err,
      },
    );
  }
}

/** The agent's data dir. */
export class AgentState {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Creates the data dir with mode 0700. */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  /** The stored SVID, or undefined when there is none or it cannot be used (then the agent attests again). */
  async loadIdentity(): Promise<X509Svid | undefined> {
    const text = await readBounded(join(this.dir, IDENTITY_FILE));
    if (text === undefined) return undefined;
    try {
      const doc = JSON.parse(text) as { certificates?: unknown; key?: unknown };
      if (typeof doc.certificates !== 'string' || typeof doc.key !== 'string') return undefined;
      return X509Svid.parse(doc.certificates, doc.key);
    } catch {
      return undefined;
    }
  }

  /** Stores the SVID and key in one 0600 file. */
  async saveIdentity(svid: X509Svid): Promise<void> {
    const doc = { certificates: svid.certificatesPem(), key: svid.privateKeyPem() };
    await writeFileAtomic(join(this.dir, IDENTITY_FILE), JSON.stringify(doc) + '\n', 0o600);
  }

  /** The stored bundle of the trust domain, if any. */
  async loadBundle(td: TrustDomain): Promise<SpiffeBundle | undefined> {
    const text = await readBounded(join(this.dir, BUNDLE_FILE));
    if (text === undefined) return undefined;
    try {
      return SpiffeBundle.parse(td, text);
    } catch {
      return undefined;
    }
  }

  /** Stores the bundle. */
  async saveBundle(bundle: SpiffeBundle): Promise<void> {
    await writeFileAtomic(join(this.dir, BUNDLE_FILE), bundle.marshal() + '\n', 0o644);
  }
}
