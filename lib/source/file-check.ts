/**
 * The checking half of FileSource: parses and validates one raw read (SVID and key, bundles, tokens)
 * into the set the source serves, or refuses it with a FileSourceError that names the file.
 */
import { createHash } from 'node:crypto';
import { BundleSet, JwtBundle, parseBundleDocument, SpiffeBundle, type X509Bundle } from '../bundle/index.js';
import { SvidkitError } from '../errors/index.js';
import { looksLikeCompactJws } from '../jws/index.js';
import { MAX_TOKEN_BYTES } from '../jwtsvid/index.js';
import type { FileLayout, FileNames } from '../layout/index.js';
import { TrustDomain } from '../spiffeid/index.js';
import { verify, X509Svid } from '../x509svid/index.js';
import { fileError, type RawSet, type ReadAt } from './file-read.js';

/** What a check needs: where the files were, their names and layout, and the clock. */
export interface CheckSettings {
  readonly dir: string;
  readonly layout: FileLayout;
  readonly names: FileNames;
  readonly clock: () => Date;
}

/** A token file as served. */
export interface LoadedToken {
  token: string;
  /** The `exp` claim in ms, when present. */
  expiresAt: number | undefined;
}

/** One accepted set. */
export interface State {
  svid: X509Svid;
  bundles: BundleSet;
  tokens: ReadonlyMap<string, LoadedToken>;
  fingerprint: string;
  updatedAt: Date;
}

/**
 * The cause to attach to a wrapping error: a copy of a SvidkitError without its own cause (a parser's
 * cause, such as a SyntaxError, may quote the input), nothing for anything else.
 */
export function safeCause(err: unknown): SvidkitError | undefined {
  return err instanceof SvidkitError ? new SvidkitError(err.code, err.message) : undefined;
}

export function now(clock: () => Date): Date {
  const d = clock();
  if (!(d instanceof Date) || Number.isNaN(d.getTime()))
    throw new TypeError('source: clock() must return a valid Date');
  return d;
}

/** Parses one token file: a compact JWS; its `exp`, if any, is kept for getJwtSvid. */
function parseToken(name: string, data: Buffer, at: ReadAt): LoadedToken {
  const token = data.toString('utf8').trim();
  const bad = (why: string): never => {
    throw fileError('ERR_SOURCE_INVALID_JWT', `JWT-SVID file ${JSON.stringify(name)} ${why}; it is left out`, name, at);
  };
  if (token.length > MAX_TOKEN_BYTES || !looksLikeCompactJws(token)) bad('does not hold a compact JWS');
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
  } catch {
    bad('has a payload that is not JSON');
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims))
    bad('has a payload that is not an object');
  const exp = (claims as Record<string, unknown>)['exp'];
  if (exp !== undefined && (typeof exp !== 'number' || !Number.isFinite(exp))) bad('has a non-numeric exp claim');
  return { token, expiresAt: exp === undefined ? undefined : (exp as number) * 1000 };
}

/**
 * Parses a JWT bundle file: the agent's `{"<td>": <JWKS>}` (a JWKS may also be a base64 string of
 * one, as spiffe-helper writes), a `{"trust_domains": ...}` set, or one JWKS for `ownTd`.
 */
function parseJwtBundleFile(data: Buffer, ownTd: TrustDomain): JwtBundle[] {
  const text = data.toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new SvidkitError('ERR_BUNDLE_MALFORMED', 'bundle: JWT bundle file is not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new SvidkitError('ERR_BUNDLE_MALFORMED', 'bundle: JWT bundle file must hold a JSON object');
  }
  const obj = doc as Record<string, unknown>;
  if (Array.isArray(obj['keys'])) return [JwtBundle.parse(ownTd, text)];
  if (obj['trust_domains'] !== undefined)
    return BundleSet.parse(text)
      .bundles()
      .map((b) => b.jwt);
  return Object.entries(obj).map(([name, jwks]) => {
    const td = TrustDomain.parse(name);
    if (typeof jwks === 'string') return JwtBundle.parse(td, Buffer.from(jwks, 'base64'));
    return JwtBundle.parse(td, JSON.stringify(jwks));
  });
}

/** Adds JWT bundles to a set, keeping each trust domain's X.509 roots. */
function withJwtBundles(set: BundleSet, jwt: readonly JwtBundle[]): BundleSet {
  let out = set;
  for (const b of jwt) {
    const x509: X509Bundle | undefined = out.get(b.trustDomain)?.x509;
    out = out.with(new SpiffeBundle(b.trustDomain, { x509, jwt: b }));
  }
  return out;
}

function sha256(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}

/** Validates a read; throws ERR_SOURCE_KEY_MISMATCH or ERR_SOURCE_INVALID for a set that must not be served. */
export function checkSet(s: CheckSettings, raw: RawSet): { state: State; problems: SvidkitError[] } {
  const { dir, names, layout } = s;
  let svid: X509Svid;
  try {
    svid = X509Svid.parse(raw.svid, raw.key);
  } catch (err) {
    if (err instanceof SvidkitError && err.code === 'ERR_X509SVID_KEY_MISMATCH') {
      throw fileError(
        'ERR_SOURCE_KEY_MISMATCH',
        `${names.key} does not match ${names.svid} in ${dir} (a half-written pair?); the last good set stays`,
        names.key,
        raw.at,
        safeCause(err),
      );
    }
    const why = err instanceof SvidkitError ? err.message : 'cannot be parsed';
    const message = `${names.svid} and ${names.key} in ${dir}: ${why}`;
    throw fileError('ERR_SOURCE_INVALID', message, names.svid, raw.at, safeCause(err));
  }
  const td = svid.id.trustDomain;
  let bundles: BundleSet;
  let bundleFile = raw.spiffeBundle !== undefined ? names.spiffeBundle : names.bundle;
  try {
    bundles =
      raw.spiffeBundle !== undefined
        ? BundleSet.parse(raw.spiffeBundle)
        : parseBundleDocument(raw.bundlePem ?? Buffer.alloc(0), td);
    if (raw.jwtBundle !== undefined && raw.spiffeBundle === undefined) {
      bundleFile = names.jwtBundle;
      bundles = withJwtBundles(bundles, parseJwtBundleFile(raw.jwtBundle, td));
    }
  } catch (err) {
    const why = err instanceof SvidkitError ? err.message : 'cannot be parsed';
    throw fileError('ERR_SOURCE_INVALID', `${bundleFile} in ${dir}: ${why}`, bundleFile, raw.at, safeCause(err));
  }
  const at = now(s.clock);
  try {
    verify(svid.certificates, bundles, { at });
  } catch (err) {
    const why = err instanceof SvidkitError ? err.message : 'verification failed';
    throw fileError(
      'ERR_SOURCE_INVALID',
      `${names.svid} in ${dir} does not verify against the bundle of ${td.name}: ${why}`,
      names.svid,
      raw.at,
      safeCause(err),
    );
  }
  const problems = [...raw.tokenProblems];
  const tokens = new Map<string, LoadedToken>();
  for (const [file, data] of raw.tokens) {
    try {
      tokens.set(file, parseToken(`${names.jwtDir}/${file}`, data, raw.at));
    } catch (err) {
      if (err instanceof SvidkitError) problems.push(err);
      else throw err;
    }
  }
  const fingerprint = sha256(
    layout,
    ...svid.certificates.map((c) => c.fingerprint256()),
    JSON.stringify(bundles.toJson()),
    ...[...tokens].map(([file, t]) => `${file}=${t.token}`),
  );
  return { state: { svid, bundles, tokens, fingerprint, updatedAt: new Date() }, problems };
}
