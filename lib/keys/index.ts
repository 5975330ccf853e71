/**
 * Key types svidkit supports, key generation and PKCS#8 loading, all through Node's crypto (OpenSSL).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject } from 'node:crypto';
import { SvidkitError } from '../errors/index.js';
import { decodePem, encodePem } from '../internal/pem.js';

/** Supported key types; ECDSA P-256 is the default, as in SPIRE, Linkerd and csi-driver-spiffe. */
export const KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096', 'ed25519'] as const;

/** One of KEY_TYPES. */
export type KeyType = (typeof KEY_TYPES)[number];

/** The default key type. */
export const DEFAULT_KEY_TYPE: KeyType = 'ec-p256';

/** A private/public key pair. */
export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** Checks a user-given key type name. */
export function parseKeyType(name: string): KeyType {
  if ((KEY_TYPES as readonly string[]).includes(name)) return name as KeyType;
  throw new SvidkitError(
    'ERR_KEY_UNSUPPORTED',
    `keys: unsupported key type "${name}" (one of ${KEY_TYPES.join(', ')})`,
  );
}

/** Generates a key pair of the given type. */
export function generateKeyPair(type: KeyType = DEFAULT_KEY_TYPE): KeyPair {
  switch (type) {
    case 'ec-p256':
      return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    case 'ec-p384':
      return generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    case 'rsa-2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 });
    case 'rsa-3072':
      return generateKeyPairSync('rsa', { modulusLength: 3072 });
    case 'rsa-4096':
      return generateKeyPairSync('rsa', { modulusLength: 4096 });
    case 'ed25519':
      return generateKeyPairSync('ed25519');
    default:
      return parseKeyType(type as string) as never;
  }
}

// KeyObjects cannot change after creation, so what is derived from one stays true for as long as the
// object lives; the agent asks the same questions of every workload key several times per rotation.
const keyTypes = new WeakMap<KeyObject, KeyType>();
const spkis = new WeakMap<KeyObject, Buffer>();

/** The key type of a key (private or public); throws ERR_KEY_UNSUPPORTED for anything else. */
export function keyTypeOf(key: KeyObject): KeyType {
  let type = keyTypes.get(key);
  if (type === undefined) {
    type = readKeyType(key);
    // Only Node's own KeyObjects are immutable; a look-alike object is asked again every time.
    if (key instanceof KeyObject) keyTypes.set(key, type);
  }
  return type;
}

function readKeyType(key: KeyObject): KeyType {
  const kind = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (kind === 'ec') {
    if (details.namedCurve === 'prime256v1') return 'ec-p256';
    if (details.namedCurve === 'secp384r1') return 'ec-p384';
  } else if (kind === 'rsa') {
    if (details.modulusLength === 2048) return 'rsa-2048';
    if (details.modulusLength === 3072) return 'rsa-3072';
    if (details.modulusLength === 4096) return 'rsa-4096';
  } else if (kind === 'ed25519') {
    return 'ed25519';
  }
  const what = kind === 'ec' ? `ec ${details.namedCurve}` : kind === 'rsa' ? `rsa ${details.modulusLength}` : kind;
  throw new SvidkitError('ERR_KEY_UNSUPPORTED', `keys: unsupported key (${what ?? 'unknown'})`);
}

/** Most PEM blocks a key file may hold: the key, a chain of up to 10 certificates, and a spare. */
const MAX_KEY_FILE_BLOCKS = 12;

/** Loads a PKCS#8 private key (`PRIVATE KEY` PEM block); other formats and encrypted keys are refused. */
export function loadPrivateKeyPem(pem: string | Uint8Array): KeyObject {
  // Other blocks are skipped: a key file may also hold its certificate chain (up to 10 certificates).
  const blocks = decodePem(pem, MAX_KEY_FILE_BLOCKS);
  const keys = blocks.filter((b) => b.type.endsWith('PRIVATE KEY'));
  if (keys.length !== 1) {
    throw new SvidkitError('ERR_KEY_MALFORMED', `keys: expected exactly one private key block, found ${keys.length}`);
  }
  const block = keys[0]!;
  if (block.type !== 'PRIVATE KEY') {
    throw new SvidkitError('ERR_KEY_MALFORMED', `keys: expected a PKCS#8 "PRIVATE KEY" block, found "${block.type}"`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: block.der, format: 'der', type: 'pkcs8' });
  } catch (cause) {
    // The cause may quote key bytes; keep it off the message.
    throw new SvidkitError('ERR_KEY_MALFORMED', 'keys: private key is not valid PKCS#8', { cause });
  }
  keyTypeOf(key);
  return key;
}

/** Encodes a private key as a PKCS#8 PEM block. */
export function privateKeyToPem(key: KeyObject): string {
  return encodePem('PRIVATE KEY', key.export({ format: 'der', type: 'pkcs8' }));
}

/** The exported SPKI of `key`, made once per KeyObject; never handed out, so no caller can change it. */
function cachedSpki(key: KeyObject): Buffer {
  let der = spkis.get(key);
  if (der === undefined) {
    const pub = key.type === 'private' ? createPublicKey(key) : key;
    der = pub.export({ format: 'der', type: 'spki' }) as Buffer;
    if (key instanceof KeyObject) spkis.set(key, der);
  }
  return der;
}

/** The DER SubjectPublicKeyInfo of a public or private key (a fresh copy the caller may keep or change). */
export function spkiDer(key: KeyObject): Buffer {
  return Buffer.from(cachedSpki(key));
}

/** True when the public key of `key` (public or private) is encoded as exactly these SPKI bytes. */
export function hasSpkiDer(key: KeyObject, spki: Uint8Array): boolean {
  return cachedSpki(key).equals(spki);
}

/** True when both keys (public or private) have the same public key. */
export function samePublicKey(a: KeyObject, b: KeyObject): boolean {
  return cachedSpki(a).equals(cachedSpki(b));
}
