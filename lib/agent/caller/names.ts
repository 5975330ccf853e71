/**
 * User and group names for the unix:user and unix:group selectors, from /etc/passwd and /etc/group
 * as getpwuid(3) and getgrgid(3) would find them in files (the first line naming an id wins). The
 * file is read again only when its device, inode, size, mtime or ctime change, and never beyond a
 * size cap: a name that cannot be looked up gives no selector, which can only match fewer entries.
 */
import { type BigIntStats, promises as fsp, statSync } from 'node:fs';
import { constants } from 'node:fs';
import { errnoOf } from '../../layout/index.js';

/** Default cap on /etc/passwd and /etc/group: a host with tens of thousands of local accounts fits. */
export const DEFAULT_MAX_NAMES_FILE = 8 * 1024 * 1024;

/** The names of the ids asked for (an id without a name is left out), or why none could be read. */
export type NameLookup = { readonly names: ReadonlyMap<number, string> } | { readonly note: string };

interface Loaded {
  readonly key: string;
  readonly names: ReadonlyMap<number, string> | undefined;
  readonly note: string | undefined;
}

function fingerprint(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** Parses name:password:id:... lines; anything else on a line is not read. */
function parse(text: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (line.length === 0 || line.startsWith('#')) continue;
    const fields = line.split(':', 4);
    const name = fields[0];
    const id = fields[2];
    if (name === undefined || id === undefined || !/^\d{1,10}$/.test(id)) continue;
    // NIS markers (+, -) and names with control characters or spaces are not account names.
    if (name.length === 0 || name.length > 256 || /[\s\p{Cc}+]/u.test(name) || name.startsWith('-')) continue;
    const n = Number(id);
    if (n > 0xffffffff || names.has(n)) continue;
    names.set(n, name);
  }
  return names;
}

/** One of /etc/passwd or /etc/group, cached by its identity on disk. */
export class NameTable {
  readonly #path: string;
  readonly #maxBytes: number;
  #loaded: Loaded | undefined;
  #loading: Promise<Loaded> | undefined;

  constructor(path: string, maxBytes: number) {
    this.#path = path;
    this.#maxBytes = maxBytes;
  }

  /** The names of `ids`, from the file as it is now. */
  async lookup(ids: readonly number[]): Promise<NameLookup> {
    const table = await this.#current();
    if (table.names === undefined) return { note: table.note ?? `${this.#path} could not be read` };
    const names = new Map<number, string>();
    for (const id of ids) {
      const name = table.names.get(id);
      if (name !== undefined) names.set(id, name);
    }
    return { names };
  }

  async #current(): Promise<Loaded> {
    let st: BigIntStats;
    try {
      // Synchronous, as the writer's metadata calls are (docs/decisions.md): a stat of a local file is
      // a few microseconds, a thread-pool round trip on every RPC costs several times that.
      st = statSync(this.#path, { bigint: true });
    } catch (err) {
      return { key: '', names: undefined, note: `${this.#path} could not be read (${errnoOf(err) ?? String(err)})` };
    }
    const key = fingerprint(st);
    if (this.#loaded?.key === key) return this.#loaded;
    // One reload at a time: a burst of callers after an edit shares it.
    if (this.#loading === undefined) {
      this.#loading = this.#load(st).finally(() => (this.#loading = undefined));
    }
    const loaded = await this.#loading;
    this.#loaded = loaded;
    return loaded;
  }

  async #load(st: BigIntStats): Promise<Loaded> {
    if (!st.isFile()) return { key: '', names: undefined, note: `${this.#path} is not a regular file` };
    const tooLarge = { key: '', names: undefined, note: `${this.#path} is larger than ${this.#maxBytes} bytes` };
    if (st.size > BigInt(this.#maxBytes)) return tooLarge;
    let h: fsp.FileHandle;
    try {
      h = await fsp.open(this.#path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      return { key: '', names: undefined, note: `${this.#path} could not be read (${errnoOf(err) ?? String(err)})` };
    }
    try {
      const opened = await h.stat({ bigint: true });
      if (!opened.isFile()) return { key: '', names: undefined, note: `${this.#path} is not a regular file` };
      // Sized for the file as it is now; a file that grows while read is read in further chunks, to the cap.
      const chunks: Buffer[] = [];
      let len = 0;
      for (let want = Number(opened.size) + 1; ; want = 64 * 1024) {
        const buf = Buffer.alloc(Math.min(want, this.#maxBytes + 1 - len));
        const { bytesRead } = await h.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        chunks.push(buf.subarray(0, bytesRead));
        len += bytesRead;
        if (len > this.#maxBytes) return tooLarge;
      }
      return { key: fingerprint(opened), names: parse(Buffer.concat(chunks).toString('utf8')), note: undefined };
    } catch (err) {
      return { key: '', names: undefined, note: `${this.#path} could not be read (${errnoOf(err) ?? String(err)})` };
    } finally {
      await h.close();
    }
  }
}
