/**
 * PEM decoding with explicit bounds. Input sizes are limited before any work is done so that a
 * hostile file cannot make us allocate or loop without limit.
 */
import { SvidkitError } from '../errors/index.js';

/** Largest PEM input accepted anywhere (a chain of ten RSA-4096 certificates is about 20 KiB). */
export const MAX_PEM_BYTES = 64 * 1024;

/** One decoded PEM block. */
export interface PemBlock {
  readonly type: string;
  readonly der: Buffer;
}

const BEGIN = /^-----BEGIN ([A-Z0-9 ]{1,64})-----$/;
const END = /^-----END ([A-Z0-9 ]{1,64})-----$/;
const BASE64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes every PEM block of `input`; text outside blocks is ignored, as OpenSSL does. */
export function decodePem(input: string | Uint8Array, maxBlocks: number, maxBytes = MAX_PEM_BYTES): PemBlock[] {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (size > maxBytes) throw new SvidkitError('ERR_PEM_TOO_LARGE', `pem: input is larger than ${maxBytes} bytes`);
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
  const lines = text.split(/\r?\n/);
  const blocks: PemBlock[] = [];
  let type: string | undefined;
  let body: string[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (type === undefined) {
      const m = BEGIN.exec(line);
      if (m) {
        type = m[1]!;
        body = [];
      }
      continue;
    }
    const m = END.exec(line);
    if (m) {
      if (m[1] !== type) throw new SvidkitError('ERR_PEM_MALFORMED', `pem: END line does not match BEGIN ${type}`);
      const b64 = body.join('');
      if (b64.length % 4 !== 0) throw new SvidkitError('ERR_PEM_MALFORMED', `pem: ${type} block has bad base64 length`);
      const der = Buffer.from(b64, 'base64');
      if (der.length === 0) throw new SvidkitError('ERR_PEM_MALFORMED', `pem: ${type} block is empty`);
      blocks.push({ type, der });
      if (blocks.length > maxBlocks) {
        throw new SvidkitError('ERR_PEM_TOO_LARGE', `pem: more than ${maxBlocks} blocks`);
      }
      type = undefined;
      continue;
    }
    if (line.includes(':')) {
      // RFC 1421 headers (Proc-Type, DEK-Info) mean an encrypted legacy key: refuse rather than misread it.
      throw new SvidkitError('ERR_PEM_MALFORMED', `pem: ${type} block has headers (encrypted PEM is not supported)`);
    }
    if (!BASE64_LINE.test(line)) throw new SvidkitError('ERR_PEM_MALFORMED', `pem: ${type} block has invalid base64`);
    body.push(line);
  }
  if (type !== undefined) throw new SvidkitError('ERR_PEM_MALFORMED', `pem: ${type} block has no END line`);
  return blocks;
}

/** Encodes DER as one PEM block with 64-character lines. */
export function encodePem(type: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${type}-----\n${lines.join('\n')}\n-----END ${type}-----\n`;
}
