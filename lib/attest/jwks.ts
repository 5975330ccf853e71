/**
 * Loading the public keys of a Kubernetes service-account issuer: from a JWKS file, or from the
 * issuer's OIDC discovery document and the `jwks_uri` it names.
 *
 * Everything read here comes from outside the CA (a file an operator copied, or a web server), so
 * every read is bounded in size and time, and every failure is one SvidkitError with the code
 * ERR_ATTEST_PSAT_JWKS, which the attestor turns into "keep the last good key set".
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { open } from 'node:fs/promises';
import { SvidkitError } from '../errors/index.js';
import {
  isJwsAlgorithm,
  JWS_ALGORITHMS,
  type JwsAlgorithm,
  keyMismatch as jwsKeyMismatch,
  quote,
} from '../jws/index.js';

/** Largest JWKS accepted, from a file or over HTTP. */
export const MAX_JWKS_BYTES = 1024 * 1024;
/** Largest OIDC discovery document accepted; real ones are a few hundred bytes. */
export const MAX_DISCOVERY_BYTES = 64 * 1024;
/** Most usable keys kept from one JWKS; an issuer rotates through two or three. */
export const MAX_JWKS_KEYS = 256;
/** Time allowed for one HTTP request, body included. */
export const FETCH_TIMEOUT_MS = 5000;
/** Longest key ID accepted in a JWKS or a token header. */
export const MAX_KID_LENGTH = 256;

/** Signature algorithms a service-account token may use: the JWS core's list (no symmetric, none or EdDSA). */
export const PSAT_ALGORITHMS = JWS_ALGORITHMS;

/** One of PSAT_ALGORITHMS. */
export type PsatAlgorithm = JwsAlgorithm;

/** One public key of an issuer, as the attestor uses it. */
export interface IssuerKey {
  /** Key ID, when the JWKS gives one. */
  readonly kid: string | undefined;
  /** The JWK's `alg`, when the JWKS pins one; a token must then use exactly it. */
  readonly alg: PsatAlgorithm | undefined;
  /** The imported public key. */
  readonly key: KeyObject;
}

/** The usable keys of one JWKS document. */
export interface IssuerKeySet {
  /** Every usable key, in document order. */
  readonly keys: readonly IssuerKey[];
  /** The keys that have a kid, by kid. */
  readonly byKid: ReadonlyMap<string, IssuerKey>;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function fail(message: string, cause?: unknown): never {
  throw new SvidkitError('ERR_ATTEST_PSAT_JWKS', `attest: ${message}`, cause === undefined ? undefined : { cause });
}

export { quote };

/** True when `alg` is one of PSAT_ALGORITHMS. */
export const isPsatAlgorithm: (alg: unknown) => alg is PsatAlgorithm = isJwsAlgorithm;

/** Why `key` cannot verify `alg`, or undefined when it can. */
export function keyMismatch(key: IssuerKey, alg: PsatAlgorithm): string | undefined {
  if (key.alg !== undefined && key.alg !== alg) return `the key is pinned to ${key.alg}`;
  return jwsKeyMismatch(key.key, alg);
}

function parseJsonObject(bytes: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(bytes));
  } catch (cause) {
    fail(`${what} is not UTF-8 JSON`, cause);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

/**
 * Parses a JWKS document into the keys a PSAT may be signed with. Keys for other uses (`use` other
 * than "sig"), other key types and other algorithms are skipped, as an issuer may publish them; a
 * document that is broken, carries private key material, repeats a kid or has no usable key is
 * refused as a whole, so that the attestor keeps its last good set instead of a partial one.
 */
export function parseJwks(bytes: Uint8Array, source: string): IssuerKeySet {
  if (bytes.length > MAX_JWKS_BYTES) fail(`JWKS from ${source} is larger than ${MAX_JWKS_BYTES} bytes`);
  const doc = parseJsonObject(bytes, `JWKS from ${source}`);
  const list = doc['keys'];
  if (!Array.isArray(list)) fail(`JWKS from ${source} has no "keys" array`);
  const keys: IssuerKey[] = [];
  const byKid = new Map<string, IssuerKey>();
  for (const entry of list) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      fail(`JWKS from ${source} has a key that is not an object`);
    }
    const jwk = entry as Record<string, unknown>;
    // A published private key means the issuer is compromised or misconfigured: trust nothing from it.
    for (const m of PRIVATE_MEMBERS) {
      if (jwk[m] !== undefined) fail(`JWKS from ${source} contains private or symmetric key material`);
    }
    if (jwk['use'] !== undefined && jwk['use'] !== 'sig') continue;
    if (jwk['kty'] !== 'RSA' && jwk['kty'] !== 'EC') continue;
    const alg = jwk['alg'];
    if (alg !== undefined && !isPsatAlgorithm(alg)) continue;
    const kid = jwk['kid'];
    if (kid !== undefined && (typeof kid !== 'string' || kid === '' || kid.length > MAX_KID_LENGTH)) {
      fail(`JWKS from ${source} has a key with an invalid kid`);
    }
    if (kid !== undefined && byKid.has(kid)) fail(`JWKS from ${source} repeats kid ${quote(kid)}`);
    // Import the public members only, so nothing else a JWK may carry (x5c, key_ops...) changes the key.
    const pub = (
      jwk['kty'] === 'EC'
        ? { kty: 'EC', crv: jwk['crv'], x: jwk['x'], y: jwk['y'] }
        : { kty: 'RSA', n: jwk['n'], e: jwk['e'] }
    ) as JsonWebKey;
    let key: KeyObject;
    try {
      key = createPublicKey({ key: pub, format: 'jwk' });
    } catch (cause) {
      fail(`JWKS from ${source} has a key that is not a valid public key`, cause);
    }
    const issuerKey: IssuerKey = Object.freeze({ kid, alg, key });
    keys.push(issuerKey);
    if (kid !== undefined) byKid.set(kid, issuerKey);
    if (keys.length > MAX_JWKS_KEYS) fail(`JWKS from ${source} has more than ${MAX_JWKS_KEYS} keys`);
  }
  if (keys.length === 0) fail(`JWKS from ${source} has no RSA or EC signing key`);
  return Object.freeze({ keys: Object.freeze(keys), byKid });
}

/** Reads at most `max` bytes of a file; one byte more is read only to detect that it is too large. */
async function readFileBounded(path: string, max: number): Promise<Buffer> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (cause) {
    fail(`cannot open JWKS file ${quote(path)}`, cause);
  }
  try {
    const buf = Buffer.alloc(max + 1);
    let total = 0;
    while (total < buf.length) {
      const { bytesRead } = await handle.read(buf, total, buf.length - total, total);
      if (bytesRead === 0) break;
      total += bytesRead;
    }
    if (total > max) fail(`JWKS file ${quote(path)} is larger than ${max} bytes`);
    return buf.subarray(0, total);
  } catch (cause) {
    if (cause instanceof SvidkitError) throw cause;
    fail(`cannot read JWKS file ${quote(path)}`, cause);
  } finally {
    await handle.close();
  }
}

/** Loads an issuer's keys from a JWKS file. */
export async function loadJwksFile(path: string): Promise<IssuerKeySet> {
  return parseJwks(await readFileBounded(path, MAX_JWKS_BYTES), `file ${quote(path)}`);
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/**
 * Why `url` may not be fetched, or undefined when it may. Plain http is allowed only on loopback
 * (tests, or a proxy on the same host): over a network it would let anyone on the path swap keys.
 */
export function fetchUrlProblem(url: URL): string | undefined {
  if (url.username !== '' || url.password !== '') return 'must not contain credentials';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return undefined;
  return 'must be https (http only on a loopback address)';
}

/** Reads a response body up to `max` bytes; the Content-Length is checked first when there is one. */
async function readBodyBounded(res: Response, max: number, what: string): Promise<Uint8Array> {
  const declared = res.headers.get('content-length');
  if (declared !== null && Number(declared) > max) {
    await res.body?.cancel().catch(() => {});
    fail(`${what} is larger than ${max} bytes`);
  }
  if (res.body === null) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    // The length header may lie or be absent (chunked encoding); stop reading as soon as we know.
    if (total > max) {
      await reader.cancel().catch(() => {});
      fail(`${what} is larger than ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

async function fetchBounded(fetchImpl: typeof fetch, url: URL, max: number, what: string): Promise<Uint8Array> {
  try {
    const res = await fetchImpl(url, {
      // Covers the body too: a server that trickles bytes is cut off like one that never answers.
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
      // A redirect could leave the origin the issuer vouches for; the rules below would not see it.
      redirect: 'error',
      headers: { accept: 'application/json' },
    });
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      fail(`${what} answered HTTP ${res.status}`);
    }
    return await readBodyBounded(res, max, what);
  } catch (cause) {
    if (cause instanceof SvidkitError) throw cause;
    fail(`${what} could not be fetched`, cause);
  }
}

/** Where OIDC discovery looks for an issuer's configuration (OpenID Connect Discovery 1.0, section 4). */
export function discoveryUrl(issuer: string): URL {
  // The spec says to drop a terminating "/" of the issuer before appending the well-known path.
  return new URL(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`);
}

/**
 * Loads an issuer's keys by OIDC discovery. The document must name the configured issuer exactly, and
 * its `jwks_uri` must be on the issuer's origin (or on `allowJwksOrigin`): otherwise whoever can edit
 * the discovery document alone could point the CA at keys of their own choosing.
 */
export async function loadJwksByDiscovery(
  issuer: string,
  fetchImpl: typeof fetch,
  allowJwksOrigin: string | undefined,
): Promise<IssuerKeySet> {
  const configUrl = discoveryUrl(issuer);
  const configWhat = `discovery document of ${quote(issuer)}`;
  const doc = parseJsonObject(await fetchBounded(fetchImpl, configUrl, MAX_DISCOVERY_BYTES, configWhat), configWhat);
  if (doc['issuer'] !== issuer) fail(`${configWhat} names a different issuer`);
  const jwksUri = doc['jwks_uri'];
  if (typeof jwksUri !== 'string' || !URL.canParse(jwksUri)) fail(`${configWhat} has no valid jwks_uri`);
  const url = new URL(jwksUri);
  const problem = fetchUrlProblem(url);
  if (problem !== undefined) fail(`jwks_uri ${quote(jwksUri)} ${problem}`);
  if (url.origin !== new URL(issuer).origin && url.origin !== allowJwksOrigin) {
    fail(`jwks_uri ${quote(jwksUri)} is not on the issuer's origin and allowJwksOrigin does not name it`);
  }
  const what = `JWKS at ${quote(jwksUri)}`;
  return parseJwks(await fetchBounded(fetchImpl, url, MAX_JWKS_BYTES, what), quote(jwksUri));
}
