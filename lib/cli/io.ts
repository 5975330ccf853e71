/** Bounded file and stdin reading for the CLI; every failure is a SvidkitError with ERR_IO. */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { SvidkitError } from '../errors/index.js';

/** Where the CLI writes and what it reads from; injected so tests run commands in-process. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly stdin: () => AsyncIterable<Uint8Array>;
}

/** Reads a whole file (or stdin for "-") of at most `max` bytes. */
export async function readInput(path: string, max: number, io: CliIo): Promise<Buffer> {
  if (path === '-') return readStream(io.stdin(), max, 'standard input');
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer before the regular-file check refuses it.
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const st = await handle.stat();
    if (!st.isFile()) throw new SvidkitError('ERR_IO', `io: ${path} is not a regular file`);
    if (st.size > max) throw new SvidkitError('ERR_IO', `io: ${path} is larger than ${max} bytes`);
    // At most max + 1 bytes, whatever the file grew to after stat.
    const buf = Buffer.alloc(max + 1);
    let got = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, got, buf.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
      if (got > max) throw new SvidkitError('ERR_IO', `io: ${path} is larger than ${max} bytes`);
    }
    return buf.subarray(0, got);
  } catch (err) {
    if (err instanceof SvidkitError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new SvidkitError('ERR_IO', `io: cannot read ${path} (${code})`, { cause: err });
  } finally {
    await handle?.close();
  }
}

async function readStream(stream: AsyncIterable<Uint8Array>, max: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > max) throw new SvidkitError('ERR_IO', `io: ${what} is larger than ${max} bytes`);
    parts.push(Buffer.from(chunk));
  }
  return Buffer.concat(parts);
}
