/**
 * Reading back what the writer delivered, as one consistent version: the tests' and tools' view of a
 * workload directory (FileSource is the library's). Built on lib/layout's reader and `..data` rules.
 */
import { basename, join, resolve } from 'node:path';
import { SvidkitError } from '../errors/index.js';
import {
  DATA_LINK as DATA,
  errnoOf,
  type FileNames,
  LayoutReadError,
  readBounded,
  readDataLink,
  resolveFileNames,
} from '../layout/index.js';

/** meta.json as written. */
export interface WorkloadMeta {
  spiffe_id: string;
  serial: string;
  not_after: string;
  version: number;
  written_at: string;
}

/** One consistent read of a workload's files, all taken from the same version directory. */
export interface WorkloadFilesSnapshot {
  svidPem: string;
  keyPem: string;
  bundlePem: string;
  meta: WorkloadMeta;
  /** Absolute path of the version directory that was read. */
  versionDir: string;
}

/** Largest file readWorkloadFiles reads (a bundle set may be 4 MiB). */
const MAX_READ_BYTES = 8 * 1024 * 1024;
/** How often a read is retried when a rewrite removed the version it had resolved. */
const READ_ATTEMPTS = 20;

function readError(dir: string, why: string, cause?: unknown): SvidkitError {
  return new SvidkitError(
    'ERR_AGENT_READ',
    `agent: cannot read ${dir}: ${why}`,
    cause === undefined ? undefined : { cause },
  );
}

function parseMeta(dir: string, text: string): WorkloadMeta {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw readError(dir, 'meta file is not JSON', err);
  }
  const m = doc as Partial<Record<keyof WorkloadMeta, unknown>>;
  if (
    typeof doc !== 'object' ||
    doc === null ||
    typeof m.spiffe_id !== 'string' ||
    typeof m.serial !== 'string' ||
    typeof m.not_after !== 'string' ||
    typeof m.version !== 'number' ||
    typeof m.written_at !== 'string'
  ) {
    throw readError(dir, 'meta file lacks spiffe_id, serial, not_after, version or written_at');
  }
  return {
    spiffe_id: m.spiffe_id,
    serial: m.serial,
    not_after: m.not_after,
    version: m.version,
    written_at: m.written_at,
  };
}

/** The version directory `..data` names, checked to be a plain `..`-prefixed entry of `dir`. */
async function resolveData(dir: string): Promise<string> {
  try {
    return await readDataLink(dir);
  } catch (err) {
    if (!(err instanceof LayoutReadError)) throw err;
    const why =
      err.reason === 'no-data-link' ? `no ${DATA} link (${err.errno})` : `${DATA} does not name a version directory`;
    throw readError(dir, why, err.cause);
  }
}

/** One file of a version, as text; the layout's bounded reader with this reader's larger bound. */
async function readVersionFile(path: string): Promise<string> {
  try {
    return (await readBounded(path, MAX_READ_BYTES)).toString('utf8');
  } catch (err) {
    if (!(err instanceof LayoutReadError)) throw err;
    if (err.reason === 'open') throw err.cause;
    throw new RangeError(
      `${basename(path)}: ${err.reason === 'too-large' ? `is larger than ${MAX_READ_BYTES} bytes` : err.reason}`,
    );
  }
}

/**
 * Reads the SVID, key, bundle and meta files of one version: `..data` is resolved once and every
 * file is read from that version directory, so the result is never a mix of two versions. When a
 * concurrent rewrite removes that version mid-read, the read starts again from the new `..data`.
 */
export async function readWorkloadFiles(dir: string, names?: Partial<FileNames>): Promise<WorkloadFilesSnapshot> {
  const n = resolveFileNames(names);
  const abs = resolve(dir);
  for (let attempt = 1; ; attempt++) {
    const target = await resolveData(abs);
    const versionDir = join(abs, target);
    try {
      const [svidPem, keyPem, bundlePem, metaText] = await Promise.all(
        [n.svid, n.key, n.bundle, n.meta].map((name) => readVersionFile(join(versionDir, name))),
      );
      return { svidPem: svidPem!, keyPem: keyPem!, bundlePem: bundlePem!, meta: parseMeta(abs, metaText!), versionDir };
    } catch (err) {
      if (err instanceof SvidkitError) throw err;
      const code = errnoOf(err);
      const moved = code === 'ENOENT' && (await resolveData(abs)) !== target;
      if (!moved || attempt >= READ_ATTEMPTS) {
        throw readError(abs, code ?? (err instanceof Error ? err.message : 'error'), err);
      }
    }
  }
}
