/**
 * Interop 5: PyJWT verifies the JWT-SVIDs svidkit-ca mints, for every JWT key type the CA offers,
 * with the keys of the JWT bundle, both as the agent writes them for a workload (jwt/<aud>.token and
 * jwt_bundle.json). Checked: the algorithm the key is published for, the kid, the audience and exp;
 * a token for another audience, past its exp or with a changed signature is refused.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { note, type Peer, peer, requirePeers } from './helpers/peers.js';
import { INTEROP_DIR, type Mesh, startMesh } from './interop/mesh.js';

const AUDIENCE = 'spiffe://example.org/ns/interop/sa/db';
const OTHER_AUDIENCE = 'spiffe://example.org/ns/interop/sa/cache';
/** Each JWT key type the CA accepts (ca.jwt_key_type) and the JWS algorithm its tokens must carry. */
const JWT_KEY_TYPES = [
  ['ec-p256', 'ES256'],
  ['ec-p384', 'ES384'],
  ['rsa-2048', 'RS256'],
  ['rsa-3072', 'RS256'],
  ['rsa-4096', 'RS256'],
] as const;

interface Verdict {
  check: string;
  ok: boolean;
  alg?: string;
  kid?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  error?: string;
  message?: string;
}

function runPython(python: Peer, args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(
      python.path,
      args,
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } },
      (err, stdout, stderr) =>
        resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

const jwtPeer = peer('python-jwt');

describe(`${jwtPeer.label} verifies svidkit-ca JWT-SVIDs with the JWT bundle`, function () {
  this.timeout(180_000);
  let python: Peer;
  const meshes = new Map<string, Mesh>();

  before(async function () {
    [python] = requirePeers(this, 'python-jwt');
    for (const [keyType] of JWT_KEY_TYPES) {
      meshes.set(
        keyType,
        await startMesh({
          ca: { jwt_key_type: keyType },
          workloads: [{ name: 'jwt-client', jwtAudiences: [AUDIENCE] }],
        }),
      );
    }
  });
  after(async () => {
    for (const m of meshes.values()) await m.close();
  });

  const verify = async (mesh: Mesh, checks: string[]): Promise<Verdict[]> => {
    const files = mesh.files('jwt-client');
    const r = await runPython(python, [
      join(INTEROP_DIR, 'jwt_verify.py'),
      '--bundle',
      files.jwtBundle,
      '--token',
      files.jwt(AUDIENCE),
      ...checks,
    ]);
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    const [versions, ...verdicts] = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.match(String(versions!['pyjwt']), /^\d+\.\d+/);
    return verdicts as unknown as Verdict[];
  };

  for (const [keyType, alg] of JWT_KEY_TYPES) {
    it(`${alg} with a ${keyType} CA key: accepted for its audience, refused for another, past exp or altered`, async () => {
      const mesh = meshes.get(keyType)!;
      const [ok, wrongAudience, expired, tampered] = await verify(mesh, [
        `now:${AUDIENCE}`,
        `now:${OTHER_AUDIENCE}`,
        `expired:${AUDIENCE}`,
        `tampered:${AUDIENCE}`,
      ]);
      assert.equal(ok!.ok, true, `${ok!.error}: ${ok!.message}`);
      assert.equal(ok!.alg, alg);
      assert.equal(ok!.sub, mesh.id('jwt-client'));
      assert.deepEqual([ok!.aud].flat(), [AUDIENCE]);
      // The kid PyJWT's key was chosen by is one the CA publishes, and exp is the CA's.
      const written = JSON.parse(readFileSync(mesh.files('jwt-client').jwtBundle, 'utf8')) as Record<
        string,
        { keys: { kid: string }[] }
      >;
      const published = mesh.ca.context.keys
        .bundle()
        .jwt.toJwks()
        .keys.map((k) => k.kid);
      assert.deepEqual(
        written['example.org']!.keys.map((k) => k.kid),
        published,
      );
      assert.ok(published.includes(ok!.kid!), `kid ${ok!.kid} is one the CA publishes`);
      assert.ok(ok!.exp! * 1000 > Date.now());

      assert.equal(wrongAudience!.ok, false);
      assert.equal(wrongAudience!.error, 'InvalidAudienceError', wrongAudience!.message);
      assert.equal(expired!.ok, false);
      assert.equal(expired!.error, 'ExpiredSignatureError', expired!.message);
      assert.equal(tampered!.ok, false);
      assert.equal(tampered!.error, 'InvalidSignatureError', tampered!.message);
      note(
        `${alg} kid ${ok!.kid!.slice(0, 12)}…: sub ${ok!.sub!}, exp in ${ok!.exp! - Math.floor(Date.now() / 1000)} s`,
      );
    });
  }
});
