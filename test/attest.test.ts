/**
 * Tests of lib/attest: join tokens, and Kubernetes PSAT attestation against a JWKS file and against a
 * real local OIDC discovery server. Keys are generated at test time; the clock is injected and fixed,
 * so nothing here depends on the wall clock or on timing.
 */
import { strict as assert } from 'node:assert';
import { createHash, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  agentIdForJoinToken,
  DEFAULT_JWKS_CACHE_SECONDS,
  generateJoinToken,
  hashJoinToken,
  joinTokenMatchesHash,
  MAX_JWKS_BYTES,
  MAX_PSAT_BYTES,
  type PsatAttestation,
  PsatAttestor,
  type PsatAttestorOptions,
  type PsatClusterConfig,
  validateJoinToken,
} from '../lib/attest/index.js';
import { type ErrorCode, ERROR_CODES, SvidkitError } from '../lib/errors/index.js';
import { SpiffeId, TrustDomain } from '../lib/spiffeid/index.js';
import { craft, edit } from './helpers/jwt.js';
import {
  editAt,
  psatClaims,
  serveIssuer,
  signPsat,
  startHttpServer,
  type TestHttpServer,
  unsignedToken,
} from './helpers/k8s.js';
import { rejectsCode } from './helpers/assert.js';

const NOW = new Date('2030-06-01T12:00:00.000Z');
const NOW_S = NOW.getTime() / 1000;
const TD = 'example.org';
const AUD = 'svidkit-ca';
// The default issuer of a kubeadm cluster: not reachable from outside, so its keys come from a file.
const FILE_ISSUER = 'https://kubernetes.default.svc.cluster.local';
const ALLOW = [{ namespace: 'svidkit', serviceAccount: 'svidkit-agent' }];
const NODE = 'worker-1.example.internal';

interface Pair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

// Filled in by before(): keys are generated at test time, never checked in.
const K = {} as { rsa: Pair; rsa2: Pair; ps: Pair; ec: Pair; rogue: Pair; ed: Pair };
let dir: string;
let jwksFile: string;
let server: TestHttpServer;

/** The public JWK of a pair, as an API server publishes it at /openid/v1/jwks. */
function jwk(pair: Pair, kid: string | undefined, alg: string): JsonWebKey {
  const out: JsonWebKey = { ...pair.publicKey.export({ format: 'jwk' }), use: 'sig', alg };
  if (kid !== undefined) out['kid'] = kid;
  return out;
}

function jwksDoc(...keys: JsonWebKey[]): { keys: JsonWebKey[] } {
  return { keys };
}

async function writeJwks(name: string, doc: unknown): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return path;
}

function claimsFor(iss: string, changes: Record<string, unknown> = {}): Record<string, unknown> {
  return edit(psatClaims({ iss, aud: [AUD, 'https://kubernetes.default.svc'], now: NOW_S }), changes);
}

const claims = (changes: Record<string, unknown> = {}) => claimsFor(FILE_ISSUER, changes);
const rs256 = (c = claims(), header: Record<string, unknown> = {}) =>
  signPsat(c, K.rsa.privateKey, { alg: 'RS256', kid: 'rsa-1', ...header });
const es256 = (c = claims(), header: Record<string, unknown> = {}) =>
  signPsat(c, K.ec.privateKey, { alg: 'ES256', kid: 'ec-1', ...header });
const rs256rotated = (c = claims()) => signPsat(c, K.rsa2.privateKey, { alg: 'RS256', kid: 'rsa-2' });

function cluster(changes: Partial<PsatClusterConfig> = {}): PsatClusterConfig {
  return { name: 'prod', issuer: FILE_ISSUER, audience: AUD, jwksFile, allow: ALLOW, ...changes };
}

/** A clock that tests move forward by hand. */
function manualClock(start = NOW): { clock: () => Date; advance: (seconds: number) => void } {
  let now = start.getTime();
  return { clock: () => new Date(now), advance: (s) => (now += s * 1000) };
}

function attestor(clusters: PsatClusterConfig[] = [cluster()], options: PsatAttestorOptions = {}): PsatAttestor {
  return new PsatAttestor(TD, clusters, { clock: () => NOW, ...options });
}

function assertAttestation(
  got: PsatAttestation,
  clusterName = 'prod',
  node = NODE,
  // null: the token carries no node uid (undefined would pick the default).
  nodeUid: string | null = '0b7c3d2e-1f4a-4b5c-8d6e-7f8091a2b3c4',
): void {
  assert.equal(got.agentId.toString(), `spiffe://${TD}/svidkit/agent/k8s_psat/${clusterName}/${node}`);
  assert.ok(got.agentId instanceof SpiffeId);
  assert.equal(got.cluster, clusterName);
  assert.equal(got.namespace, 'svidkit');
  assert.equal(got.serviceAccount, 'svidkit-agent');
  assert.equal(got.podName, 'svidkit-agent-x7k2p');
  assert.equal(got.podUid, 'c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f');
  assert.equal(got.nodeName, node);
  assert.equal(got.nodeUid, nodeUid ?? undefined);
  assert.equal(Object.hasOwn(got, 'nodeUid'), nodeUid !== null);
  assert.ok(Object.isFrozen(got));
}

before(async () => {
  K.rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  K.rsa2 = generateKeyPairSync('rsa', { modulusLength: 2048 });
  K.rogue = generateKeyPairSync('rsa', { modulusLength: 2048 });
  K.ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  K.ed = generateKeyPairSync('ed25519');
  K.ps = generateKeyPairSync('rsa', { modulusLength: 2048 });
  dir = await mkdtemp(join(tmpdir(), 'svidkit-attest-'));
  // Like a real issuer's JWKS plus noise that must be skipped: an encryption key and an OKP key.
  jwksFile = await writeJwks(
    'jwks.json',
    jwksDoc(
      jwk(K.rsa, 'rsa-1', 'RS256'),
      jwk(K.ec, 'ec-1', 'ES256'),
      jwk(K.ps, 'ps-1', 'PS256'),
      { ...jwk(K.rogue, 'enc-1', 'RSA-OAEP'), use: 'enc' },
      { ...K.ed.publicKey.export({ format: 'jwk' }), kid: 'ed-1', use: 'sig', alg: 'EdDSA' },
    ),
  );
  server = await startHttpServer();
});

after(async () => {
  await server?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('attest: error codes', () => {
  it('registers every attestation code in the attestation group', () => {
    const codes: readonly string[] = ERROR_CODES;
    for (const code of ['ERR_ATTEST_JOIN_TOKEN_MALFORMED', 'ERR_ATTEST_PSAT_ALGORITHM', 'ERR_ATTEST_PSAT_NODE_NAME']) {
      assert.ok(codes.includes(code), code);
    }
  });
});

describe('attest: join tokens', () => {
  it('generates 32 random bytes as unpadded base64url', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const t = generateJoinToken();
      assert.match(t, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(Buffer.from(t, 'base64url').length, 32);
      validateJoinToken(t);
      seen.add(t);
    }
    assert.equal(seen.size, 50);
  });

  it('hashes with SHA-256 to lowercase hex', () => {
    const t = 'abcdefghijklmnop';
    assert.equal(hashJoinToken(t), createHash('sha256').update(t).digest('hex'));
    assert.equal(
      hashJoinToken('0123456789abcdef'),
      // Computed independently: printf %s 0123456789abcdef | sha256sum
      '9f9f5111f7b27a781f1f1ddde5ebc2dd2b796bfc7365c9c28b548e564176929f',
    );
    assert.match(hashJoinToken(generateJoinToken()), /^[0-9a-f]{64}$/);
  });

  it('builds the agent ID from the hash, never the token', () => {
    const t = generateJoinToken();
    const id = agentIdForJoinToken(TD, t);
    assert.equal(id.toString(), `spiffe://${TD}/svidkit/agent/join_token/${hashJoinToken(t)}`);
    assert.ok(!id.toString().includes(t));
    assert.ok(agentIdForJoinToken(TrustDomain.parse(TD), t).equals(id));
  });

  it('matches a token against its stored hash', () => {
    const t = generateJoinToken();
    assert.equal(joinTokenMatchesHash(t, hashJoinToken(t)), true);
    assert.equal(joinTokenMatchesHash(generateJoinToken(), hashJoinToken(t)), false);
    assert.throws(() => joinTokenMatchesHash(t, 'not-a-hash'), TypeError);
  });

  it('accepts the length bounds 16 and 256', () => {
    validateJoinToken('a'.repeat(16));
    validateJoinToken('_-'.repeat(128));
  });

  const malformed: [string, unknown][] = [
    ['empty', ''],
    ['15 characters', 'a'.repeat(15)],
    ['257 characters', 'a'.repeat(257)],
    ['padding', `${'a'.repeat(20)}=`],
    ['standard base64 +', `${'a'.repeat(20)}+b`],
    ['standard base64 /', `${'a'.repeat(20)}/b`],
    ['space', `${'a'.repeat(10)} ${'b'.repeat(10)}`],
    ['newline', `${'a'.repeat(20)}\n`],
    ['non-ASCII', `${'a'.repeat(20)}é`],
    ['not a string', 1234567890123456],
    ['undefined', undefined],
  ];
  for (const [name, token] of malformed) {
    it(`refuses a malformed token: ${name}`, () => {
      for (const fn of [
        () => validateJoinToken(token),
        () => hashJoinToken(token as string),
        () => agentIdForJoinToken(TD, token as string),
      ]) {
        assert.throws(fn, (err: unknown) => {
          assert.ok(err instanceof SvidkitError);
          assert.equal(err.code, 'ERR_ATTEST_JOIN_TOKEN_MALFORMED');
          assert.match(err.message, /^attest: /);
          if (typeof token === 'string' && token.length > 0) assert.ok(!err.message.includes(token));
          return true;
        });
      }
    });
  }
});

describe('attest: PSAT with a JWKS file', () => {
  interface Case {
    name: string;
    token: () => Promise<string> | string;
    code?: ErrorCode;
    clusterName?: string;
    node?: string;
    noNodeUid?: boolean;
  }
  const k8s = (path: string[], changes: Record<string, unknown>) =>
    editAt(claims(), ['kubernetes.io', ...path], changes);

  const cases: Case[] = [
    { name: 'valid RS256', token: () => rs256() },
    { name: 'valid ES256', token: () => es256() },
    { name: 'valid PS256', token: () => signPsat(claims(), K.ps.privateKey, { alg: 'PS256', kid: 'ps-1' }) },
    {
      name: 'PS256 under a key pinned to RS256',
      token: () => signPsat(claims(), K.rsa.privateKey, { alg: 'PS256', kid: 'rsa-1' }),
      code: 'ERR_ATTEST_PSAT_SIGNATURE',
    },
    { name: 'aud as a single string', token: () => rs256(claims({ aud: AUD })) },
    { name: 'wrong audience', token: () => rs256(claims({ aud: ['other'] })), code: 'ERR_ATTEST_PSAT_AUDIENCE' },
    { name: 'audience prefix only', token: () => rs256(claims({ aud: 'svidkit' })), code: 'ERR_ATTEST_PSAT_AUDIENCE' },
    {
      name: 'audience in another case',
      token: () => rs256(claims({ aud: 'SVIDKIT-CA' })),
      code: 'ERR_ATTEST_PSAT_AUDIENCE',
    },
    { name: 'no aud', token: () => rs256(claims({ aud: undefined })), code: 'ERR_ATTEST_PSAT_AUDIENCE' },
    { name: 'aud not strings', token: () => rs256(claims({ aud: [AUD, 7] })), code: 'ERR_ATTEST_PSAT_AUDIENCE' },
    { name: 'expired 31 s ago', token: () => rs256(claims({ exp: NOW_S - 31 })), code: 'ERR_ATTEST_PSAT_EXPIRED' },
    { name: 'expired long ago', token: () => rs256(claims({ exp: NOW_S - 86400 })), code: 'ERR_ATTEST_PSAT_EXPIRED' },
    { name: 'expired 30 s ago, within leeway', token: () => rs256(claims({ exp: NOW_S - 30 })) },
    { name: 'no exp (legacy token)', token: () => rs256(claims({ exp: undefined })), code: 'ERR_ATTEST_PSAT_CLAIMS' },
    {
      name: 'exp not a number',
      token: () => rs256(claims({ exp: String(NOW_S + 60) })),
      code: 'ERR_ATTEST_PSAT_CLAIMS',
    },
    { name: 'nbf 31 s ahead', token: () => rs256(claims({ nbf: NOW_S + 31 })), code: 'ERR_ATTEST_PSAT_NOT_YET_VALID' },
    { name: 'nbf 30 s ahead, within leeway', token: () => rs256(claims({ nbf: NOW_S + 30 })) },
    { name: 'no nbf', token: () => rs256(claims({ nbf: undefined })) },
    { name: 'iat not a number', token: () => rs256(claims({ iat: 'now' })), code: 'ERR_ATTEST_PSAT_CLAIMS' },
    {
      name: 'alg none',
      token: () => unsignedToken({ alg: 'none', kid: 'rsa-1' }, claims()),
      code: 'ERR_ATTEST_PSAT_ALGORITHM',
    },
    {
      name: 'HS256 "signed" with the public key PEM',
      token: () =>
        signPsat(claims(), Buffer.from(K.rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string), {
          alg: 'HS256',
          kid: 'rsa-1',
        }),
      code: 'ERR_ATTEST_PSAT_ALGORITHM',
    },
    {
      name: 'EdDSA',
      token: () => signPsat(claims(), K.ed.privateKey, { alg: 'EdDSA', kid: 'ed-1' }),
      code: 'ERR_ATTEST_PSAT_ALGORITHM',
    },
    { name: 'no alg', token: () => unsignedToken({ kid: 'rsa-1' }, claims()), code: 'ERR_ATTEST_PSAT_ALGORITHM' },
    {
      name: 'lowercase alg',
      token: () => craft({ alg: 'rs256', kid: 'rsa-1' }, claims(), K.rsa.privateKey, 'RS256'),
      code: 'ERR_ATTEST_PSAT_ALGORITHM',
    },
    {
      name: 'signed by another key under a known kid',
      token: () => signPsat(claims(), K.rogue.privateKey, { alg: 'RS256', kid: 'rsa-1' }),
      code: 'ERR_ATTEST_PSAT_SIGNATURE',
    },
    {
      name: 'payload swapped after signing',
      token: async () => {
        const [h, , s] = (await rs256()).split('.');
        const forged = Buffer.from(JSON.stringify(k8s(['node'], { name: 'other-node' }))).toString('base64url');
        return `${h}.${forged}.${s}`;
      },
      code: 'ERR_ATTEST_PSAT_SIGNATURE',
    },
    {
      name: 'RS256 with the kid of an EC key',
      token: () => signPsat(claims(), K.rsa.privateKey, { alg: 'RS256', kid: 'ec-1' }),
      code: 'ERR_ATTEST_PSAT_SIGNATURE',
    },
    {
      name: 'RS384 with a key pinned to RS256',
      token: () => signPsat(claims(), K.rsa.privateKey, { alg: 'RS384', kid: 'rsa-1' }),
      code: 'ERR_ATTEST_PSAT_SIGNATURE',
    },
    { name: 'no kid, one RSA key in the JWKS', token: () => signPsat(claims(), K.rsa.privateKey, { alg: 'RS256' }) },
    { name: 'no kid, one EC key in the JWKS', token: () => signPsat(claims(), K.ec.privateKey, { alg: 'ES256' }) },
    {
      name: 'no kid, no ES384 key',
      token: () => signPsat(claims(), generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey, { alg: 'ES384' }),
      code: 'ERR_ATTEST_PSAT_UNKNOWN_KID',
    },
    {
      name: 'kid of the skipped encryption key',
      token: () => signPsat(claims(), K.rogue.privateKey, { alg: 'RS256', kid: 'enc-1' }),
      code: 'ERR_ATTEST_PSAT_UNKNOWN_KID',
    },
    // jose refuses to sign an unknown crit extension, so this one is signed by hand.
    {
      name: 'crit header',
      token: () => craft({ alg: 'RS256', kid: 'rsa-1', crit: ['x'], x: 1 }, claims(), K.rsa.privateKey),
      code: 'ERR_ATTEST_PSAT_MALFORMED',
    },
    { name: 'typ JWT is fine', token: () => rs256(claims(), { typ: 'JWT' }) },
    {
      name: 'typ of another token kind',
      token: () => rs256(claims(), { typ: 'at+jwt' }),
      code: 'ERR_ATTEST_PSAT_MALFORMED',
    },
    { name: 'empty kid', token: () => rs256(claims(), { kid: '' }), code: 'ERR_ATTEST_PSAT_MALFORMED' },
    {
      name: 'sub namespace differs from kubernetes.io',
      token: () => rs256(claims({ sub: 'system:serviceaccount:kube-system:svidkit-agent' })),
      code: 'ERR_ATTEST_PSAT_SUBJECT',
    },
    {
      name: 'sub service account differs from kubernetes.io',
      token: () => rs256(claims({ sub: 'system:serviceaccount:svidkit:default' })),
      code: 'ERR_ATTEST_PSAT_SUBJECT',
    },
    {
      name: 'kubernetes.io namespace differs from sub',
      token: () => rs256(k8s([], { namespace: 'kube-system' })),
      code: 'ERR_ATTEST_PSAT_SUBJECT',
    },
    {
      name: 'sub with an extra segment',
      token: () => rs256(claims({ sub: 'system:serviceaccount:svidkit:svidkit-agent:x' })),
      code: 'ERR_ATTEST_PSAT_SUBJECT',
    },
    { name: 'no sub', token: () => rs256(claims({ sub: undefined })), code: 'ERR_ATTEST_PSAT_SUBJECT' },
    {
      name: 'no kubernetes.io claim',
      token: () => rs256(claims({ 'kubernetes.io': undefined })),
      code: 'ERR_ATTEST_PSAT_CLAIMS',
    },
    {
      name: 'no serviceaccount',
      token: () => rs256(k8s([], { serviceaccount: undefined })),
      code: 'ERR_ATTEST_PSAT_CLAIMS',
    },
    {
      name: 'no pod (pre-1.30 token)',
      token: () => rs256(k8s([], { pod: undefined })),
      code: 'ERR_ATTEST_PSAT_CLAIMS',
    },
    { name: 'no pod uid', token: () => rs256(k8s(['pod'], { uid: undefined })), code: 'ERR_ATTEST_PSAT_CLAIMS' },
    { name: 'empty pod name', token: () => rs256(k8s(['pod'], { name: '' })), code: 'ERR_ATTEST_PSAT_CLAIMS' },
    { name: 'no node', token: () => rs256(k8s([], { node: undefined })), code: 'ERR_ATTEST_PSAT_CLAIMS' },
    { name: 'no node name', token: () => rs256(k8s(['node'], { name: undefined })), code: 'ERR_ATTEST_PSAT_CLAIMS' },
    { name: 'node name not a string', token: () => rs256(k8s(['node'], { name: 42 })), code: 'ERR_ATTEST_PSAT_CLAIMS' },
    { name: 'node uid absent is fine', token: () => rs256(k8s(['node'], { uid: undefined })), noNodeUid: true },
    { name: 'node uid not a string', token: () => rs256(k8s(['node'], { uid: 7 })), code: 'ERR_ATTEST_PSAT_CLAIMS' },
    {
      name: 'service account not on the allow-list',
      token: () =>
        rs256(
          claims({
            sub: 'system:serviceaccount:svidkit:default',
            'kubernetes.io': {
              ...(claims()['kubernetes.io'] as object),
              serviceaccount: { name: 'default', uid: 'u' },
            },
          }),
        ),
      code: 'ERR_ATTEST_PSAT_NOT_ALLOWED',
    },
    {
      name: 'namespace not on the allow-list',
      token: () =>
        rs256(
          claims({
            sub: 'system:serviceaccount:default:svidkit-agent',
            'kubernetes.io': { ...(claims()['kubernetes.io'] as object), namespace: 'default' },
          }),
        ),
      code: 'ERR_ATTEST_PSAT_NOT_ALLOWED',
    },
    {
      name: 'unknown issuer',
      token: () => rs256(claims({ iss: 'https://evil.example' })),
      code: 'ERR_ATTEST_PSAT_ISSUER',
    },
    {
      name: 'issuer with a trailing slash',
      token: () => rs256(claims({ iss: `${FILE_ISSUER}/` })),
      code: 'ERR_ATTEST_PSAT_ISSUER',
    },
    { name: 'no iss', token: () => rs256(claims({ iss: undefined })), code: 'ERR_ATTEST_PSAT_ISSUER' },
    { name: 'named cluster', token: () => rs256(), clusterName: 'prod' },
    {
      name: 'unknown cluster name',
      token: () => rs256(),
      clusterName: 'staging',
      code: 'ERR_ATTEST_PSAT_UNKNOWN_CLUSTER',
    },
    {
      name: "node name with '/'",
      token: () => rs256(k8s(['node'], { name: 'a/b' })),
      code: 'ERR_ATTEST_PSAT_NODE_NAME',
    },
    { name: "node name '..'", token: () => rs256(k8s(['node'], { name: '..' })), code: 'ERR_ATTEST_PSAT_NODE_NAME' },
    { name: "node name '.'", token: () => rs256(k8s(['node'], { name: '.' })), code: 'ERR_ATTEST_PSAT_NODE_NAME' },
    {
      name: 'node name with a space',
      token: () => rs256(k8s(['node'], { name: 'my node' })),
      code: 'ERR_ATTEST_PSAT_NODE_NAME',
    },
    {
      name: 'node name with %2F',
      token: () => rs256(k8s(['node'], { name: 'a%2Fb' })),
      code: 'ERR_ATTEST_PSAT_NODE_NAME',
    },
    { name: 'node name that is an IP', token: () => rs256(k8s(['node'], { name: '10.0.3.7' })), node: '10.0.3.7' },
    {
      name: 'oversize token',
      token: () => rs256(claims({ pad: 'x'.repeat(MAX_PSAT_BYTES) })),
      code: 'ERR_ATTEST_PSAT_TOO_LARGE',
    },
    { name: 'large but allowed token', token: () => rs256(claims({ pad: 'x'.repeat(10_000) })) },
    { name: 'oversize garbage', token: () => 'x'.repeat(MAX_PSAT_BYTES + 1), code: 'ERR_ATTEST_PSAT_TOO_LARGE' },
    { name: 'garbage', token: () => 'not a token at all', code: 'ERR_ATTEST_PSAT_MALFORMED' },
    { name: 'empty string', token: () => '', code: 'ERR_ATTEST_PSAT_MALFORMED' },
    { name: 'four parts', token: async () => `${await rs256()}.x`, code: 'ERR_ATTEST_PSAT_MALFORMED' },
    { name: 'JWE-like five parts', token: () => 'a.b.c.d.e', code: 'ERR_ATTEST_PSAT_MALFORMED' },
    { name: 'header not base64url', token: () => '!!!!.e30.', code: 'ERR_ATTEST_PSAT_MALFORMED' },
    { name: 'padded base64', token: async () => (await rs256()).replace('.', '=.'), code: 'ERR_ATTEST_PSAT_MALFORMED' },
    {
      name: 'header not JSON',
      token: () => `${Buffer.from('nope').toString('base64url')}.e30.`,
      code: 'ERR_ATTEST_PSAT_MALFORMED',
    },
    {
      name: 'payload an array',
      token: () =>
        `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from('[]').toString('base64url')}.`,
      code: 'ERR_ATTEST_PSAT_MALFORMED',
    },
    { name: 'not a string', token: () => 42 as unknown as string, code: 'ERR_ATTEST_PSAT_MALFORMED' },
  ];

  for (const c of cases) {
    it(`${c.code === undefined ? 'accepts' : 'refuses'}: ${c.name}`, async () => {
      const token = await c.token();
      const a = attestor();
      if (c.code === undefined) {
        const got = await a.attest(token, c.clusterName);
        assertAttestation(got, 'prod', c.node ?? NODE, c.noNodeUid ? null : undefined);
      } else {
        await rejectsCode(a.attest(token, c.clusterName), c.code, { prefix: 'attest: ', secret: token });
      }
    });
  }

  it('needs a named cluster when two clusters share the default issuer', async () => {
    const a = attestor([cluster({ name: 'east' }), cluster({ name: 'west' })]);
    const token = await rs256();
    await rejectsCode(a.attest(token), 'ERR_ATTEST_PSAT_ISSUER', { secret: token });
    assertAttestation(await a.attest(token, 'west'), 'west');
  });

  it('refuses a named cluster whose issuer is not the token issuer', async () => {
    const a = attestor([cluster(), cluster({ name: 'other', issuer: 'https://other.example', jwksFile })]);
    const token = await rs256();
    await rejectsCode(a.attest(token, 'other'), 'ERR_ATTEST_PSAT_ISSUER', { secret: token });
    assertAttestation(await a.attest(token), 'prod');
  });

  it('refuses a kid-less token when the JWKS has several keys of its type', async () => {
    const file = await writeJwks('two-rsa.json', jwksDoc(jwk(K.rsa, 'rsa-1', 'RS256'), jwk(K.rsa2, 'rsa-2', 'RS256')));
    const a = attestor([cluster({ jwksFile: file })]);
    const token = await signPsat(claims(), K.rsa.privateKey, { alg: 'RS256' });
    await rejectsCode(a.attest(token), 'ERR_ATTEST_PSAT_AMBIGUOUS_KEY', { secret: token });
    assertAttestation(await a.attest(await rs256()));
  });

  it('accepts a JWKS whose keys have no kid, for kid-less tokens only', async () => {
    const file = await writeJwks('no-kid.json', jwksDoc(jwk(K.rsa, undefined, 'RS256')));
    const a = attestor([cluster({ jwksFile: file })]);
    assertAttestation(await a.attest(await signPsat(claims(), K.rsa.privateKey, { alg: 'RS256' })));
    await rejectsCode(a.attest(await rs256()), 'ERR_ATTEST_PSAT_UNKNOWN_KID');
  });

  it('re-reads the file once for an unknown kid and picks up a rotated key', async () => {
    const file = await writeJwks('rotating.json', jwksDoc(jwk(K.rsa, 'rsa-1', 'RS256')));
    const a = attestor([cluster({ jwksFile: file })]);
    assertAttestation(await a.attest(await rs256()));
    await writeJwks('rotating.json', jwksDoc(jwk(K.rsa, 'rsa-1', 'RS256'), jwk(K.rsa2, 'rsa-2', 'RS256')));
    assertAttestation(await a.attest(await rs256rotated()));
  });

  it('keeps the last good keys when the file becomes unreadable', async () => {
    const file = await writeJwks('vanishing.json', jwksDoc(jwk(K.rsa, 'rsa-1', 'RS256')));
    const t = manualClock();
    const a = attestor([cluster({ jwksFile: file })], { clock: t.clock });
    assertAttestation(await a.attest(await rs256()));
    await writeJwks('vanishing.json', '{"keys": [');
    t.advance(DEFAULT_JWKS_CACHE_SECONDS + 1);
    assertAttestation(await a.attest(await rs256()));
    const err = await rejectsCode(a.attest(await rs256rotated()), 'ERR_ATTEST_PSAT_UNKNOWN_KID');
    assert.ok(err.cause instanceof SvidkitError && err.cause.code === 'ERR_ATTEST_PSAT_JWKS');
  });

  const badFiles: [string, () => Promise<string>][] = [
    ['missing', async () => join(dir, 'does-not-exist.json')],
    ['larger than 1 MiB', () => writeJwks('huge.json', `{"keys":[],"pad":"${'x'.repeat(MAX_JWKS_BYTES)}"}`)],
    ['not JSON', () => writeJwks('bad.json', 'keys: []')],
    ['no keys array', () => writeJwks('nokeys.json', { keys: {} })],
    ['no usable key', () => writeJwks('enc-only.json', jwksDoc({ ...jwk(K.rsa, 'enc', 'RSA-OAEP'), use: 'enc' }))],
    [
      'a private key',
      () => writeJwks('private.json', jwksDoc({ ...K.rsa.privateKey.export({ format: 'jwk' }), kid: 'rsa-1' })),
    ],
    [
      'a symmetric key',
      () => writeJwks('oct.json', jwksDoc(jwk(K.rsa, 'rsa-1', 'RS256'), { kty: 'oct', k: 'c2VjcmV0', kid: 'h' })),
    ],
    ['a repeated kid', () => writeJwks('dup.json', jwksDoc(jwk(K.rsa, 'x', 'RS256'), jwk(K.rsa2, 'x', 'RS256')))],
    [
      'an invalid key',
      () => writeJwks('invalid.json', jwksDoc({ kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA', kid: 'e' })),
    ],
  ];
  for (const [name, make] of badFiles) {
    it(`refuses a JWKS file that is ${name}`, async () => {
      const a = attestor([cluster({ jwksFile: await make() })]);
      await rejectsCode(a.attest(await rs256()), 'ERR_ATTEST_PSAT_JWKS');
    });
  }
});

describe('attest: PSAT with OIDC discovery', () => {
  let other: TestHttpServer;
  // Keys each test issuer serves; tests change them to simulate rotation and outages.
  const served = new Map<string, { keys: JsonWebKey[]; status: number }>();

  function issuer(prefix: string, keys: JsonWebKey[], discovery?: Parameters<typeof serveIssuer>[3]) {
    served.set(prefix, { keys, status: 200 });
    return serveIssuer(
      server,
      prefix,
      () => {
        const s = served.get(prefix)!;
        return { status: s.status, body: jwksDoc(...s.keys) };
      },
      discovery,
    );
  }

  function discoveryCluster(iss: string, changes: Partial<PsatClusterConfig> = {}): PsatClusterConfig {
    return { name: 'prod', issuer: iss, audience: AUD, discovery: true, allow: ALLOW, ...changes };
  }

  before(async () => {
    other = await startHttpServer();
  });
  after(async () => {
    await other?.close();
  });

  it('accepts RS256 and ES256 tokens and caches the keys', async () => {
    const i = issuer('/basic', [jwk(K.rsa, 'rsa-1', 'RS256'), jwk(K.ec, 'ec-1', 'ES256')]);
    const t = manualClock();
    const a = attestor([discoveryCluster(i.issuer)], { clock: t.clock });
    assertAttestation(await a.attest(await rs256(claimsFor(i.issuer))));
    assertAttestation(await a.attest(await es256(claimsFor(i.issuer))));
    assert.equal(server.count(i.discoveryPath), 1);
    assert.equal(server.count(i.jwksPath), 1);
    t.advance(DEFAULT_JWKS_CACHE_SECONDS - 1);
    await a.attest(await rs256(claimsFor(i.issuer, { exp: NOW_S + 7200 })));
    assert.equal(server.count(i.jwksPath), 1);
    t.advance(1);
    await a.attest(await rs256(claimsFor(i.issuer, { exp: NOW_S + 7200 })));
    assert.equal(server.count(i.discoveryPath), 2);
    assert.equal(server.count(i.jwksPath), 2);
  });

  it('refuses bad algorithms before fetching or using any key', async () => {
    const i = issuer('/no-key-use', [jwk(K.rsa, 'rsa-1', 'RS256')]);
    const a = attestor([discoveryCluster(i.issuer)]);
    const pem = Buffer.from(K.rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string);
    const hs = await signPsat(claimsFor(i.issuer), pem, { alg: 'HS256', kid: 'rsa-1' });
    await rejectsCode(a.attest(hs), 'ERR_ATTEST_PSAT_ALGORITHM', { secret: hs });
    const none = unsignedToken({ alg: 'none' }, claimsFor(i.issuer));
    await rejectsCode(a.attest(none), 'ERR_ATTEST_PSAT_ALGORITHM', { secret: none });
    const ed = await signPsat(claimsFor(i.issuer), K.ed.privateKey, { alg: 'EdDSA', kid: 'rsa-1' });
    await rejectsCode(a.attest(ed), 'ERR_ATTEST_PSAT_ALGORITHM', { secret: ed });
    assert.equal(server.count(i.discoveryPath), 0);
    assert.equal(server.count(i.jwksPath), 0);
  });

  it('refetches exactly once for an unknown kid, then refuses', async () => {
    const i = issuer('/unknown-kid', [jwk(K.rsa, 'rsa-1', 'RS256')]);
    const a = attestor([discoveryCluster(i.issuer)]);
    await a.attest(await rs256(claimsFor(i.issuer)));
    assert.equal(server.count(i.jwksPath), 1);
    const token = await signPsat(claimsFor(i.issuer), K.rsa2.privateKey, { alg: 'RS256', kid: 'nope' });
    await rejectsCode(a.attest(token), 'ERR_ATTEST_PSAT_UNKNOWN_KID', { secret: token });
    assert.equal(server.count(i.discoveryPath), 2);
    assert.equal(server.count(i.jwksPath), 2);
  });

  it('does not refetch twice for the first token when the keys were just loaded', async () => {
    const i = issuer('/cold-unknown', [jwk(K.rsa, 'rsa-1', 'RS256')]);
    const a = attestor([discoveryCluster(i.issuer)]);
    await rejectsCode(a.attest(await rs256rotated(claimsFor(i.issuer))), 'ERR_ATTEST_PSAT_UNKNOWN_KID');
    assert.equal(server.count(i.jwksPath), 1);
  });

  it('rate-limits unknown-kid refetches to one per 10 s', async () => {
    const i = issuer('/rate', [jwk(K.rsa, 'rsa-1', 'RS256')]);
    const t = manualClock();
    const a = attestor([discoveryCluster(i.issuer)], { clock: t.clock });
    await a.attest(await rs256(claimsFor(i.issuer)));
    const unknown = await signPsat(claimsFor(i.issuer), K.rsa2.privateKey, { alg: 'RS256', kid: 'nope' });
    await rejectsCode(a.attest(unknown), 'ERR_ATTEST_PSAT_UNKNOWN_KID');
    assert.equal(server.count(i.jwksPath), 2);
    for (let n = 0; n < 5; n++) await rejectsCode(a.attest(unknown), 'ERR_ATTEST_PSAT_UNKNOWN_KID');
    t.advance(9);
    await rejectsCode(a.attest(unknown), 'ERR_ATTEST_PSAT_UNKNOWN_KID');
    assert.equal(server.count(i.jwksPath), 2);
    t.advance(1);
    await rejectsCode(a.attest(unknown), 'ERR_ATTEST_PSAT_UNKNOWN_KID');
    assert.equal(server.count(i.jwksPath), 3);
    // Valid tokens keep working from the cache throughout.
    await a.attest(await rs256(claimsFor(i.issuer)));
    assert.equal(server.count(i.jwksPath), 3);
  });

  it('picks up a rotated key with one refetch', async () => {
    const i = issuer('/rotation', [jwk(K.rsa, 'rsa-1', 'RS256')]);
    const a = attestor([discoveryCluster(i.issuer)]);
    await a.attest(await rs256(claimsFor(i.issuer)));
    served.get('/rotation')!.keys = [jwk(K.rsa, 'rsa-1', 'RS256'), jwk(K.rsa2, 'rsa-2', 'RS256')];
    assertAttestation(await a.attest(await rs256rotated(claimsFor(i.issuer))));
    assertAttestation(await a.attest(await rs256rotated(claimsFor(i.issuer))));
    assertAttestation(await a.attest(await rs256(claimsFor(i.issuer))));
    assert.equal(server.count(i.jwksPath), 2);
  });

  it('keeps the last good keys when the issuer fails, and waits before retrying', async () => {
    const i = issuer('/flaky', [jwk(K.rsa, 'rsa-1', 'RS256')]);
    const t = manualClock();
    const a = attestor([discoveryCluster(i.issuer)], { clock: t.clock });
    const token = await rs256(claimsFor(i.issuer, { exp: NOW_S + 7200 }));
    await a.attest(token);
    served.get('/flaky')!.status = 500;
    t.advance(DEFAULT_JWKS_CACHE_SECONDS);
    assertAttestation(await a.attest(token));
    assert.equal(server.count(i.jwksPath), 2);
    // Just failed: neither the expired cache nor an unknown kid makes it try again at once.
    assertAttestation(await a.attest(token));
    await rejectsCode(a.attest(await rs256rotated(claimsFor(i.issuer))), 'ERR_ATTEST_PSAT_UNKNOWN_KID');
    assert.equal(server.count(i.jwksPath), 2);
    served.get('/flaky')!.status = 200;
    t.advance(10);
    assertAttestation(await a.attest(token));
    assert.equal(server.count(i.jwksPath), 3);
  });

  it('refuses when the issuer has never answered', async () => {
    const i = issuer('/down', [jwk(K.rsa, 'rsa-1', 'RS256')]);
    served.get('/down')!.status = 503;
    const a = attestor([discoveryCluster(i.issuer)]);
    const token = await rs256(claimsFor(i.issuer));
    await rejectsCode(a.attest(token), 'ERR_ATTEST_PSAT_JWKS', { secret: token });
    await rejectsCode(a.attest(token), 'ERR_ATTEST_PSAT_JWKS', { secret: token });
    assert.equal(server.count(i.jwksPath), 1);
  });

  it('refuses a jwks_uri on another origin unless allowJwksOrigin names it', async () => {
    other.routes.set('/keys', () => ({ body: jwksDoc(jwk(K.rsa, 'rsa-1', 'RS256')) }));
    const i = issuer('/cross', [], (iss) => ({ issuer: iss, jwks_uri: `${other.base}/keys` }));
    const token = await rs256(claimsFor(i.issuer));
    await rejectsCode(attestor([discoveryCluster(i.issuer)]).attest(token), 'ERR_ATTEST_PSAT_JWKS', { secret: token });
    assert.equal(other.count('/keys'), 0);
    const allowed = attestor([discoveryCluster(i.issuer, { allowJwksOrigin: other.base })]);
    assertAttestation(await allowed.attest(token));
    assert.equal(other.count('/keys'), 1);
  });

  const badDiscovery: [string, (iss: string, jwksUri: string) => Record<string, unknown>][] = [
    ['names another issuer', (_iss, jwksUri) => ({ issuer: 'https://evil.example', jwks_uri: jwksUri })],
    ['has no jwks_uri', (iss) => ({ issuer: iss })],
    ['has a relative jwks_uri', (iss) => ({ issuer: iss, jwks_uri: '/openid/v1/jwks' })],
    ['has a file: jwks_uri', (iss) => ({ issuer: iss, jwks_uri: 'file:///etc/passwd' })],
    ['has an http jwks_uri off loopback', (iss) => ({ issuer: iss, jwks_uri: 'http://example.com/jwks' })],
  ];
  for (const [name, doc] of badDiscovery) {
    it(`refuses a discovery document that ${name}`, async () => {
      const prefix = `/bad-${name.replace(/[^a-z]/g, '')}`;
      const i = issuer(prefix, [jwk(K.rsa, 'rsa-1', 'RS256')], doc);
      await rejectsCode(
        attestor([discoveryCluster(i.issuer)]).attest(await rs256(claimsFor(i.issuer))),
        'ERR_ATTEST_PSAT_JWKS',
      );
      assert.equal(server.count(i.jwksPath), 0);
    });
  }

  it('refuses an oversize JWKS response', async () => {
    const i = issuer('/big', []);
    server.routes.set(i.jwksPath, () => ({ body: `{"keys":[],"pad":"${'x'.repeat(MAX_JWKS_BYTES)}"}` }));
    const err = await rejectsCode(
      attestor([discoveryCluster(i.issuer)]).attest(await rs256(claimsFor(i.issuer))),
      'ERR_ATTEST_PSAT_JWKS',
    );
    assert.match(err.message, /larger than/);
  });

  it('refuses a JWKS response with private key material', async () => {
    const i = issuer('/private', [{ ...K.rsa.privateKey.export({ format: 'jwk' }), kid: 'rsa-1' }]);
    await rejectsCode(
      attestor([discoveryCluster(i.issuer)]).attest(await rs256(claimsFor(i.issuer))),
      'ERR_ATTEST_PSAT_JWKS',
    );
  });

  it('fetches with a timeout signal, no redirects, and wraps fetch failures', async () => {
    const seen: RequestInit[] = [];
    const failing: typeof fetch = async (_url, init) => {
      seen.push(init ?? {});
      throw new Error('connection refused');
    };
    const iss = 'https://k8s.example.com';
    const a = attestor([discoveryCluster(iss)], { fetch: failing });
    const err = await rejectsCode(a.attest(await rs256(claimsFor(iss))), 'ERR_ATTEST_PSAT_JWKS');
    assert.equal((err.cause as Error).message, 'connection refused');
    assert.equal(seen.length, 1);
    assert.ok(seen[0]!.signal instanceof AbortSignal);
    assert.equal(seen[0]!.redirect, 'error');
  });

  it('uses the injected fetch for https issuers with a path', async () => {
    const urls: string[] = [];
    const iss = 'https://oidc.example.com/id/ABC123/';
    const fake: typeof fetch = async (url) => {
      const u = String(url);
      urls.push(u);
      const body = u.endsWith('openid-configuration')
        ? { issuer: iss, jwks_uri: 'https://oidc.example.com/id/ABC123/keys' }
        : jwksDoc(jwk(K.ec, 'ec-1', 'ES256'));
      return new Response(JSON.stringify(body), { status: 200 });
    };
    const a = attestor([discoveryCluster(iss)], { fetch: fake });
    assertAttestation(await a.attest(await es256(claimsFor(iss))));
    assert.deepEqual(urls, [
      'https://oidc.example.com/id/ABC123/.well-known/openid-configuration',
      'https://oidc.example.com/id/ABC123/keys',
    ]);
  });
});

describe('attest: PSAT configuration', () => {
  const bad: [string, () => PsatClusterConfig[]][] = [
    ['no clusters', () => []],
    ['a name with a slash', () => [cluster({ name: 'a/b' })]],
    ['a name ".."', () => [cluster({ name: '..' })]],
    ['an empty name', () => [cluster({ name: '' })]],
    ['a repeated name', () => [cluster(), cluster()]],
    ['no issuer', () => [cluster({ issuer: '' })]],
    ['an issuer that is not a URL', () => [cluster({ issuer: 'kubernetes/serviceaccount' })]],
    ['no audience', () => [cluster({ audience: '' })]],
    ['both jwksFile and discovery', () => [cluster({ discovery: true })]],
    ['neither jwksFile nor discovery', () => [cluster({ jwksFile: undefined })]],
    [
      'discovery over plain http',
      () => [cluster({ jwksFile: undefined, discovery: true, issuer: 'http://k8s.example.com' })],
    ],
    ['allowJwksOrigin with a file', () => [cluster({ allowJwksOrigin: 'https://keys.example.com' })]],
    [
      'allowJwksOrigin with a path',
      () => [cluster({ jwksFile: undefined, discovery: true, allowJwksOrigin: 'https://keys.example.com/x' })],
    ],
    ['an empty allow-list', () => [cluster({ allow: [] })]],
    ['an allow entry without a service account', () => [cluster({ allow: [{ namespace: 'x', serviceAccount: '' }] })]],
  ];
  for (const [name, make] of bad) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => new PsatAttestor(TD, make()),
        (err: unknown) =>
          err instanceof SvidkitError && err.code === 'ERR_ATTEST_PSAT_CONFIG' && /^attest: /.test(err.message),
      );
    });
  }

  it('refuses a bad cache time and a bad trust domain', () => {
    assert.throws(() => new PsatAttestor(TD, [cluster()], { cacheSeconds: -1 }), RangeError);
    assert.throws(() => new PsatAttestor('Not A Domain', [cluster()]), SvidkitError);
  });

  it('lists its clusters', () => {
    assert.deepEqual(attestor([cluster({ name: 'a' }), cluster({ name: 'b' })]).clusterNames(), ['a', 'b']);
  });
});
