/**
 * The file names of an SVID directory: the svidkit agent's layout (as spiffe-helper names its files),
 * cert-manager's Secret names, and the rules every configured name must follow.
 */

/** The stable file names of the layout; each must be a plain file name. */
export interface FileNames {
  /** Leaf and intermediates, PEM. */
  svid: string;
  /** The private key, PKCS#8 PEM. */
  key: string;
  /** Roots of the SVID's own trust domain, PEM. */
  bundle: string;
  /** `{"trust_domains": {...}}` of every trusted trust domain. */
  spiffeBundle: string;
  /** `{"<td>": <JWKS>}` of every trusted trust domain. */
  jwtBundle: string;
  /** Directory of `<audience>.token` files. */
  jwtDir: string;
  /** meta.json: SPIFFE ID, serial, expiry, version, write time. */
  meta: string;
}

/** Default file names, as spiffe-helper names them. */
export const DEFAULT_FILE_NAMES: Readonly<FileNames> = Object.freeze({
  svid: 'svid.pem',
  key: 'svid_key.pem',
  bundle: 'svid_bundle.pem',
  spiffeBundle: 'bundle.spiffe.json',
  jwtBundle: 'jwt_bundle.json',
  jwtDir: 'jwt',
  meta: 'meta.json',
});

/** The layouts FileSource and doctor read: the agent's, spiffe-helper's plain files, cert-manager's Secret. */
export type FileLayout = 'svidkit' | 'spiffe-helper' | 'cert-manager';

/** Every FileLayout. */
export const FILE_LAYOUTS: readonly FileLayout[] = Object.freeze(['svidkit', 'spiffe-helper', 'cert-manager']);

/** The file names of cert-manager's layout (as svid, key and bundle). */
export const CERT_MANAGER_FILE_NAMES: Readonly<Pick<FileNames, 'svid' | 'key' | 'bundle'>> = Object.freeze({
  svid: 'tls.crt',
  key: 'tls.key',
  bundle: 'ca.crt',
});

/** The names a layout starts from, before overrides. */
export function layoutBaseNames(layout: FileLayout): Partial<FileNames> {
  return layout === 'cert-manager' ? { ...CERT_MANAGER_FILE_NAMES } : { ...DEFAULT_FILE_NAMES };
}

/** Most JWT-SVIDs one workload directory holds. */
export const MAX_JWT_AUDIENCES = 256;
/** The suffix of a token file in the jwt directory. */
export const TOKEN_SUFFIX = '.token';
/** Longest file name most file systems take (bytes). */
export const MAX_FILE_NAME_BYTES = 255;

/** The token file name of an audience: every char outside [A-Za-z0-9._-] becomes '_', plus '.token'. */
export function tokenFileName(audience: string): string {
  return `${audience.replace(/[^A-Za-z0-9._-]/gu, '_')}${TOKEN_SUFFIX}`;
}

/**
 * DEFAULT_FILE_NAMES with `names` applied; throws TypeError for a name that is not a plain file name.
 * `module` starts each message ("agent: names.svid ...", "source: ..."), naming who was configured.
 */
export function resolveFileNames(names: Partial<FileNames> = {}, module = 'agent'): FileNames {
  if (typeof names !== 'object' || names === null) throw new TypeError(`${module}: names must be an object`);
  const out: FileNames = { ...DEFAULT_FILE_NAMES };
  for (const [field, value] of Object.entries(names)) {
    if (!Object.hasOwn(DEFAULT_FILE_NAMES, field)) throw new TypeError(`${module}: unknown file name "${field}"`);
    if (value === undefined) continue;
    out[field as keyof FileNames] = checkFileName(module, field, value);
  }
  const seen = new Map<string, string>();
  for (const [field, value] of Object.entries(out)) {
    const other = seen.get(value);
    if (other) throw new TypeError(`${module}: names.${field} and names.${other} are both "${value}"`);
    seen.set(value, field);
  }
  return out;
}

function checkFileName(module: string, field: string, value: unknown): string {
  const bad = (why: string): never => {
    throw new TypeError(`${module}: names.${field} ${why}`);
  };
  if (typeof value !== 'string' || value.length === 0) return bad('must be a non-empty string');
  if (value.includes('/') || value.includes('\0')) bad('must be a plain file name (no "/" or NUL)');
  // '..'-prefixed names belong to the layout itself (..data, version directories).
  if (value === '.' || value.startsWith('..')) bad('must not be "." or start with ".."');
  if (Buffer.byteLength(value, 'utf8') > MAX_FILE_NAME_BYTES) bad(`must be at most ${MAX_FILE_NAME_BYTES} bytes`);
  return value;
}
