/**
 * ValidateJWTSVID on svidkit-agent's Workload API (lib/agent/workloadapi/validate.ts): the claims as a
 * google.protobuf.Struct, checked through the real proto encoding and svidkit's client decoder, and the
 * RPC on a real CA and agent through WorkloadApiClient and WorkloadApiSource with tokens the CA minted,
 * tokens of another key or trust domain, garbage, and requests the client library would not send.
 */
import { strict as assert } from 'node:assert';
import { type Metadata, status } from '@grpc/grpc-js';
import { claimsToStruct, MAX_CLAIM_VALUES } from '../lib/agent/workloadapi/validate.js';
import type { ValidateJWTSVIDResponse__Output } from '../lib/generated/workload/ValidateJWTSVIDResponse.js';
import { MAX_TOKEN_BYTES, mintJwtSvid } from '../lib/jwtsvid/index.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { WorkloadApiClient, WorkloadApiSource } from '../lib/source/index.js';
import { parseValidateResponse } from '../lib/source/workloadapi-parse.js';
import { workloadMetadata } from '../lib/source/workloadapi-watch.js';
import { SpiffeId } from '../lib/spiffeid/index.js';
import { loadWorkloadApi, MAX_AUDIENCE_BYTES, MAX_CLAIMS_DEPTH } from '../lib/workloadapi/index.js';
import { assertCode, rejectsCode, rejectsStatus } from './helpers/assert.js';
import { startWorkloadMesh, type WorkloadMesh } from './helpers/workload-mesh.js';

/** Claims through the wire: Struct, the proto encoding grpc-js sends, and back through svidkit's client. */
async function roundTrip(claims: Record<string, unknown>, sub = 'spiffe://example.org/w'): Promise<unknown> {
  const { proto } = await loadWorkloadApi();
  const method = proto.SpiffeWorkloadAPI.service.ValidateJWTSVID;
  const bytes = method.responseSerialize({ spiffeId: sub, claims: claimsToStruct(claims) });
  const decoded = method.responseDeserialize(bytes) as ValidateJWTSVIDResponse__Output;
  return parseValidateResponse(decoded).claims;
}

/** A value nested `levels` deep below the claims object, alternating lists and objects. */
function nested(levels: number): unknown {
  let v: unknown = 'leaf';
  for (let i = 0; i < levels; i++) v = i % 2 === 0 ? [v] : { n: v };
  return v;
}

describe('ValidateJWTSVID: claims as google.protobuf.Struct', () => {
  const kept: [string, Record<string, unknown>][] = [
    ['strings, numbers, booleans and null', { s: 'x', empty: '', n: 3, f: -1.5, zero: 0, t: true, no: false, z: null }],
    ['a large number as a double', { big: 2 ** 53 - 1, tiny: 5e-324, exp: 1_900_000_000 }],
    ['lists and objects, nested', { aud: ['a', 'b'], o: { l: [1, { k: [null, 'v'] }], e: {} }, el: [] }],
    ['non-ASCII text in names and values', { naïve: 'žluťoučký kůň', emoji: '🔑' }],
    [
      'a claim named __proto__ stays a claim',
      JSON.parse('{"__proto__": {"admin": true}, "x": 1}') as Record<string, unknown>,
    ],
    [`nesting of exactly MAX_CLAIMS_DEPTH (${MAX_CLAIMS_DEPTH}) levels`, { deep: nested(MAX_CLAIMS_DEPTH) }],
  ];
  for (const [name, claims] of kept) {
    it(`keeps ${name} through the proto encoding`, async () => {
      const back = (await roundTrip(claims)) as Record<string, unknown>;
      assert.deepEqual(JSON.parse(JSON.stringify(back)), JSON.parse(JSON.stringify(claims)));
      assert.deepEqual(Object.keys(back), Object.keys(claims));
    });
  }

  it('sets exactly one member of the kind oneof per value', () => {
    const s = claimsToStruct({ a: null, b: 1, c: 's', d: false, e: [], f: {} });
    assert.deepEqual(
      Object.entries(s.fields!).map(([k, v]) => [k, Object.keys(v)]),
      [
        ['a', ['nullValue']],
        ['b', ['numberValue']],
        ['c', ['stringValue']],
        ['d', ['boolValue']],
        ['e', ['listValue']],
        ['f', ['structValue']],
      ],
    );
  });

  const refused: [string, Record<string, unknown>, RegExp][] = [
    ['nesting one level deeper than MAX_CLAIMS_DEPTH', { deep: nested(MAX_CLAIMS_DEPTH + 1) }, /nested deeper than/],
    ['more than MAX_CLAIM_VALUES values', { l: new Array<number>(MAX_CLAIM_VALUES).fill(0) }, /more than \d+ values/],
    ['a lone surrogate in a string', { s: 'a\ud800b' }, /string that is not well-formed/],
    ['a lone surrogate in a name', { '\udc00': 1 }, /name that is not well-formed/],
    ['a number that is not finite', { n: Number.POSITIVE_INFINITY }, /not finite/],
    ['NaN', { n: Number.NaN }, /not finite/],
    ['undefined, which JSON has not', { u: undefined }, /type undefined/],
    ['a bigint', { b: 1n }, /type bigint/],
  ];
  for (const [name, claims, message] of refused) {
    it(`refuses ${name} with ERR_JWTSVID_MALFORMED`, () => {
      assertCode(() => claimsToStruct(claims), 'ERR_JWTSVID_MALFORMED', { message });
    });
  }

  it('refuses claims that are not an object', () => {
    for (const v of [null, [], 'x']) {
      assertCode(() => claimsToStruct(v as unknown as Record<string, unknown>), 'ERR_JWTSVID_MALFORMED');
    }
  });
});

describe('ValidateJWTSVID on a real svidkit-agent', function () {
  this.timeout(120_000);
  let mesh: WorkloadMesh;
  let client: WorkloadApiClient;
  const uid = process.getuid?.() ?? 0;
  const workloadId = `spiffe://example.org/validate/uid-${uid}`;
  const audience = 'spiffe://example.org/db';
  let token: string;

  /** Moves the agent's clock (and only the agent's) ahead, for the expiry case. */
  let agentAhead = 0;

  before(async function () {
    mesh = await startWorkloadMesh({ agentClock: () => new Date(Date.now() + agentAhead) });
    await mesh.createEntry(workloadId, [`unix:uid:${uid}`]);
    client = await WorkloadApiClient.connect({ address: mesh.endpoint });
    const [served] = await client.fetchJwtSvids({ audience });
    token = served!.svid.marshal();
  });
  after(async () => {
    client?.close();
    await mesh?.close();
  });

  /** The agent's JWT signing key ID, which a forged token names to reach the signature check. */
  function agentKid(): string {
    const [authority] = mesh.agent.agent.workloadApi.bundle()!.jwt.authorities();
    return authority!.kid;
  }

  /** A token for `id` signed by a key the trust domain does not know. */
  function forged(kid: string, id = workloadId): Promise<string> {
    return mintJwtSvid({
      id: SpiffeId.parse(id),
      audience,
      key: generateKeyPair('ec-p256').privateKey,
      kid,
      ttlSeconds: 300,
    });
  }

  it('a token the CA minted validates: its SPIFFE ID and every claim come back', async () => {
    const r = await client.validateJwtSvid(token, audience);
    assert.equal(r.spiffeId.toString(), workloadId);
    assert.equal(r.claims['sub'], workloadId);
    assert.deepEqual(r.claims['aud'], [audience], 'aud is always a list, as SPIRE answers');
    assert.equal(typeof r.claims['exp'], 'number');
    assert.ok((r.claims['exp'] as number) * 1000 > Date.now());
  });

  it('WorkloadApiSource.validateJwtSvid asks the same agent', async () => {
    const source = await WorkloadApiSource.open({ address: mesh.endpoint });
    try {
      const r = await source.validateJwtSvid(token, audience);
      assert.equal(r.spiffeId.toString(), workloadId);
      await rejectsCode(
        source.validateJwtSvid(token, 'spiffe://example.org/other'),
        'ERR_WORKLOADAPI_INVALID_ARGUMENT',
        {
          message: /ERR_JWTSVID_AUDIENCE/,
        },
      );
    } finally {
      await source.close();
    }
  });

  const invalid: [string, () => Promise<string>, string, RegExp][] = [
    ['a token for another audience', async () => token, 'spiffe://example.org/other', /ERR_JWTSVID_AUDIENCE/],
    [
      'a token signed by another key under the agent’s key ID',
      () => forged(agentKid()),
      audience,
      /ERR_JWTSVID_SIGNATURE/,
    ],
    [
      'a token naming a key ID the bundle has not',
      () => forged('not-a-known-kid'),
      audience,
      /ERR_JWTSVID_UNKNOWN_KID/,
    ],
    [
      'a token of another trust domain',
      () => forged(agentKid(), 'spiffe://other.example/w'),
      audience,
      /ERR_JWTSVID_NO_BUNDLE.*other\.example/,
    ],
    ['garbage', async () => 'not.a.jwt', audience, /ERR_JWTSVID_MALFORMED/],
    [
      'a token whose signature was cut off',
      async () => `${token.slice(0, token.lastIndexOf('.'))}.`,
      audience,
      /ERR_JWTSVID/,
    ],
  ];
  for (const [name, make, aud, message] of invalid) {
    it(`${name} is INVALID_ARGUMENT with the reason, never the token`, async () => {
      const t = await make();
      await rejectsCode(client.validateJwtSvid(t, aud), 'ERR_WORKLOADAPI_INVALID_ARGUMENT', { message, secret: t });
    });
  }

  it('checks expiry with the agent’s clock: a token valid now is expired for an agent an hour ahead', async () => {
    agentAhead = 3600_000;
    try {
      await rejectsCode(client.validateJwtSvid(token, audience), 'ERR_WORKLOADAPI_INVALID_ARGUMENT', {
        message: /ERR_JWTSVID_EXPIRED/,
        secret: token,
      });
    } finally {
      agentAhead = 0;
    }
    assert.equal((await client.validateJwtSvid(token, audience)).spiffeId.toString(), workloadId);
  });

  describe('requests the client library would not send', () => {
    type Raw = (
      req: object,
      md: Metadata,
      cb: (err: { code: number; details: string } | null, res?: ValidateJWTSVIDResponse__Output) => void,
    ) => void;
    let raw: Raw;
    let md: Metadata;
    before(async () => {
      const { grpc } = await loadWorkloadApi();
      md = workloadMetadata(grpc);
      raw = client.raw.ValidateJWTSVID.bind(client.raw) as unknown as Raw;
    });
    const call = (req: object, metadata = md) =>
      new Promise<ValidateJWTSVIDResponse__Output>((resolve, reject) =>
        raw(req, metadata, (err, res) => (err ? reject(err) : resolve(res!))),
      );

    const cases: [string, () => object, RegExp][] = [
      ['an empty audience', () => ({ audience: '', svid: token }), /audience must be specified/],
      ['an empty svid', () => ({ audience, svid: '' }), /svid must be specified/],
      ['no fields at all', () => ({}), /audience must be specified/],
      ['an audience over the bound', () => ({ audience: 'a'.repeat(MAX_AUDIENCE_BYTES + 1), svid: token }), /audience/],
      ['a svid over the bound', () => ({ audience, svid: 'a'.repeat(MAX_TOKEN_BYTES + 1) }), /svid must be at most/],
    ];
    for (const [name, req, details] of cases) {
      it(`${name} is INVALID_ARGUMENT`, async () => {
        const e = await rejectsStatus(call(req()), status.INVALID_ARGUMENT, name);
        assert.match(e.details, details);
      });
    }

    it('a request without the security header is INVALID_ARGUMENT, even with a good token', async () => {
      const { grpc } = await loadWorkloadApi();
      const e = await rejectsStatus(call({ audience, svid: token }, new grpc.Metadata()), status.INVALID_ARGUMENT);
      assert.match(e.details, /security header/);
    });

    it('the raw answer carries aud as a list value and exp as a number value', async () => {
      const res = await call({ audience, svid: token });
      assert.equal(res.spiffeId, workloadId);
      const fields = res.claims!.fields;
      assert.equal(fields['aud']!.kind, 'listValue');
      assert.deepEqual(
        fields['aud']!.listValue!.values.map((v) => v.stringValue),
        [audience],
      );
      assert.equal(fields['exp']!.kind, 'numberValue');
      assert.equal(fields['sub']!.stringValue, workloadId);
    });
  });
});
