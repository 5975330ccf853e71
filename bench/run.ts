/**
 * `npm run bench`: throughput of svidkit's hot paths as a ratio to a raw baseline measured in the same
 * run, because this machine is shared and noisy and absolute figures mean little. Rounds of the
 * subject and its baseline alternate and the median of each is kept.
 */
import { createPublicKey, randomBytes, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jwtVerify } from 'jose';
import { importJwtAuthority, JwtBundle } from '../lib/bundle/index.js';
import { SvidIssuer } from '../lib/ca/issuer.js';
import { signedPart } from '../lib/internal/der.js';
import { mintJwtSvid, parseAndValidate } from '../lib/jwtsvid/index.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { SpiffeId } from '../lib/spiffeid/index.js';
import { buildCsr } from '../lib/x509/csr.js';
import { verify } from '../lib/x509svid/index.js';
import { T0, TestCa } from '../test/helpers/ca.js';
import { agentBench } from './agent.js';
import { caGrpc } from './ca-grpc.js';
import { callerBench } from './caller.js';
import { type BenchResult, compare } from './support.js';
import { jwtAuthBench } from './jwtauth.js';
import { libraryBench } from './library.js';
import { workloadApiBench } from './workloadapi.js';

export type { BenchResult } from './support.js';

async function x509Verify(): Promise<BenchResult> {
  const root = TestCa.root();
  const inter = root.intermediate();
  const svid = inter.svid('/bench/workload');
  const bundle = root.bundle();
  const [leaf, mid] = svid.certificates;
  const leafKey = mid!.publicKey;
  const midKey = root.cert.publicKey;
  const leafSig = new Uint8Array(leaf!.asn.signatureValue);
  const midSig = new Uint8Array(mid!.asn.signatureValue);
  return compare(
    'x509svid.verify (leaf + intermediate, P-256)',
    'chains/s',
    () => verify(svid.certificates, bundle, { at: T0 }),
    'crypto.verify x2 (one per certificate)',
    () => {
      if (!cryptoVerify('sha256', leaf!.tbs, leafKey, leafSig)) throw new Error('bad');
      if (!cryptoVerify('sha256', mid!.tbs, midKey, midSig)) throw new Error('bad');
    },
  );
}

async function jwtValidate(): Promise<BenchResult> {
  const { privateKey, publicKey } = generateKeyPair('ec-p256');
  const id = SpiffeId.parse('spiffe://example.org/bench/client');
  const now = () => T0;
  const token = await mintJwtSvid({
    id,
    audience: 'spiffe://example.org/bench/server',
    key: privateKey,
    kid: 'k1',
    clock: now,
  });
  const bundle = new JwtBundle(id.trustDomain, [importJwtAuthority('k1', publicKey.export({ format: 'jwk' }))]);
  const aud = 'spiffe://example.org/bench/server';
  return compare(
    'jwtsvid.parseAndValidate (ES256)',
    'tokens/s',
    () => parseAndValidate(token, bundle, aud, { clock: now }),
    'jose jwtVerify (same key, audience check)',
    () => jwtVerify(token, publicKey, { audience: aud, algorithms: ['ES256'], currentDate: T0 }),
  );
}

async function caIssuance(): Promise<BenchResult> {
  const ca = TestCa.root();
  const issuer = new SvidIssuer(ca);
  const id = SpiffeId.parse('spiffe://example.org/bench/workload');
  const { privateKey, publicKey } = generateKeyPair('ec-p256');
  const csrDer = buildCsr({ key: privateKey, uris: [id.toString()] });
  const info = signedPart(csrDer);
  const csrSig = cryptoSign('sha256', info, privateKey);
  const jwk = publicKey.export({ format: 'jwk' });
  const tbs = randomBytes(300);
  return compare(
    'ca issuance in-process (CSR verify + build + sign, P-256)',
    'svids/s',
    () => issuer.issue({ id, csrDer, now: T0, ttlMs: 3600_000 }),
    'raw bound: JWK import + crypto.verify + crypto.sign',
    () => {
      const key = createPublicKey({ key: jwk, format: 'jwk' });
      if (!cryptoVerify('sha256', info, key, csrSig)) throw new Error('bad');
      cryptoSign('sha256', tbs, ca.key);
    },
  );
}

function fmt(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2);
}

/** Runs every benchmark, prints a table and writes bench/results.json. */
export async function main(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const b of [
    x509Verify,
    jwtValidate,
    jwtAuthBench,
    libraryBench,
    caIssuance,
    caGrpc,
    agentBench,
    callerBench,
    workloadApiBench,
  ]) {
    const rows = await b();
    for (const r of Array.isArray(rows) ? rows : [rows]) {
      results.push(r);
      process.stdout.write(
        `${r.name}: ${fmt(r.value)} ${r.unit} | ${r.baseline}: ${fmt(r.baseline_value)} | ratio ${r.ratio.toFixed(2)}\n`,
      );
    }
  }
  const out = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results.json');
  writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
  process.stdout.write(
    `\n${'benchmark'.padEnd(64)} ${'value'.padStart(12)} ${'baseline'.padStart(12)} ${'ratio'.padStart(6)}\n`,
  );
  for (const r of results) {
    process.stdout.write(
      `${r.name.padEnd(64)} ${fmt(r.value).padStart(12)} ${fmt(r.baseline_value).padStart(12)} ${r.ratio.toFixed(2).padStart(6)}\n`,
    );
  }
  process.stdout.write(`\nwrote ${out}\n`);
  return results;
}

await main();
