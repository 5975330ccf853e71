/**
 * `npm start` for now: the identity core end to end on this machine. A throwaway CA signs two
 * workload SVIDs from CSRs, writes them under ./data/demo, and the two workloads talk over mutual
 * TLS on loopback, each checking the other's SPIFFE ID, with a JWT-SVID audience check on top.
 * (The full local mesh with the CA daemon and the agent replaces this once they exist.)
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { BundleSet, importJwtAuthority, JwtBundle, SpiffeBundle, X509Bundle } from '../lib/bundle/index.js';
import { selfSignedRoot, signWorkloadSvid } from '../lib/ca/profile.js';
import { isSvidkitError } from '../lib/errors/index.js';
import { mintJwtSvid, parseAndValidate } from '../lib/jwtsvid/index.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { SpiffeId, TrustDomain } from '../lib/spiffeid/index.js';
import { Certificate } from '../lib/x509/certificate.js';
import { parseCsr } from '../lib/x509/csr.js';
import { createCsr, verify, X509Svid } from '../lib/x509svid/index.js';

const say = (who: string, line: string) => process.stdout.write(`${new Date().toISOString()} [${who}] ${line}\n`);
const TTL_MS = 2 * 60_000;

function peerId(socket: TLSSocket, bundles: BundleSet): SpiffeId {
  // OpenSSL already checked the chain against our roots; this applies the SPIFFE rules and picks the ID.
  const chain: Certificate[] = [];
  let c = socket.getPeerCertificate(true);
  while (c?.raw && chain.length < 10) {
    chain.push(Certificate.fromDer(c.raw));
    if (c.issuerCertificate === c) break;
    c = c.issuerCertificate;
  }
  return verify(
    chain.filter((x) => !x.isSelfIssued() || !x.basicConstraints?.cA),
    bundles,
  ).id;
}

async function main(): Promise<void> {
  const dir = resolve('data', 'demo');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const td = TrustDomain.parse('demo.svidkit.local');
  const now = new Date();

  const rootKeys = generateKeyPair('ec-p256');
  const root = selfSignedRoot({
    trustDomain: td,
    key: rootKeys.privateKey,
    publicKey: rootKeys.publicKey,
    now,
    ttlMs: 24 * 3600_000,
  });
  const jwtKeys = generateKeyPair('ec-p256');
  const kid = randomUUID();
  const bundle = new SpiffeBundle(td, {
    x509: new X509Bundle(td, [root]),
    jwt: new JwtBundle(td, [importJwtAuthority(kid, jwtKeys.publicKey.export({ format: 'jwk' }))]),
    sequence: 1,
    refreshHint: 300,
  });
  const bundles = new BundleSet([bundle]);
  say('ca', `root for ${td.name} created, serial ${root.serialHex}, expires ${root.notAfter.toISOString()}`);

  const issue = (name: string): X509Svid => {
    const id = SpiffeId.fromSegments(td, 'ns', 'demo', 'sa', name);
    const key = generateKeyPair('ec-p256');
    const csr = parseCsr(createCsr(id, key.privateKey)); // the CA sees the CSR, never the key
    const cert = signWorkloadSvid({
      id,
      publicKey: csr.publicKey,
      signer: { cert: root, key: rootKeys.privateKey },
      now,
      ttlMs: TTL_MS,
    });
    const svid = X509Svid.fromParts([cert], key.privateKey);
    verify(svid.certificates, bundles);
    const out = join(dir, name);
    mkdirSync(out, { recursive: true, mode: 0o755 });
    writeFileSync(join(out, 'svid.pem'), svid.certificatesPem(), { mode: 0o644 });
    writeFileSync(join(out, 'svid_key.pem'), svid.privateKeyPem(), { mode: 0o600 });
    chmodSync(join(out, 'svid_key.pem'), 0o600);
    writeFileSync(join(out, 'svid_bundle.pem'), bundle.x509.toPem(), { mode: 0o644 });
    writeFileSync(join(out, 'bundle.spiffe.json'), bundle.marshal() + '\n', { mode: 0o644 });
    say('ca', `issued ${id} serial ${cert.serialHex} until ${cert.notAfter.toISOString()} -> ${out}`);
    return svid;
  };
  const api = issue('api');
  const web = issue('web');

  const tlsFor = (svid: X509Svid) => ({
    cert: svid.certificatesPem(),
    key: svid.privateKeyPem(),
    ca: bundle.x509.toPem(),
    minVersion: 'TLSv1.2' as const,
  });

  const server = createServer({ ...tlsFor(api), requestCert: true, rejectUnauthorized: true }, (socket) => {
    const caller = peerId(socket, bundles);
    say('api', `mTLS handshake from ${caller}`);
    let buf = '';
    socket.setEncoding('utf8');
    socket.on('data', async (d) => {
      buf += d;
      if (!buf.includes('\n') || buf.length > 16_384) return;
      const token = buf.slice(0, buf.indexOf('\n'));
      buf = '';
      try {
        const jwt = await parseAndValidate(token, bundles, api.id.toString());
        if (!jwt.id.equals(caller)) throw new Error('JWT subject is not the mTLS peer');
        say('api', `JWT-SVID accepted: sub ${jwt.id}, expires ${jwt.expiry.toISOString()}`);
        socket.write('200 hello ' + jwt.id.toString() + '\n');
      } catch (err) {
        const code = isSvidkitError(err) ? err.code : 'ERR_INTERNAL';
        say('api', `JWT-SVID refused: ${code}`);
        socket.write('401 ' + code + '\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  say('api', `listening on 127.0.0.1:${port}, mTLS required, audience ${api.id}`);

  const call = (audience: string) =>
    new Promise<string>((resolvePromise, reject) => {
      const socket = connect({
        ...tlsFor(web),
        host: '127.0.0.1',
        port,
        servername: 'api',
        // SPIFFE replaces hostname checks with an ID check on the server's SVID.
        checkServerIdentity: () => undefined,
      });
      socket.once('secureConnect', async () => {
        try {
          const serverId = peerId(socket, bundles);
          if (!serverId.equals(api.id)) throw new Error(`unexpected server ${serverId}`);
          say('web', `connected to ${serverId} over ${socket.getProtocol()}`);
          const token = await mintJwtSvid({
            id: web.id,
            audience,
            key: jwtKeys.privateKey,
            kid,
            ttlSeconds: 300,
          });
          socket.write(token + '\n');
        } catch (err) {
          reject(err);
        }
      });
      socket.setEncoding('utf8');
      socket.once('data', (d) => {
        socket.end();
        resolvePromise(String(d).trim());
      });
      socket.once('error', reject);
    });

  say('web', `answer: ${await call(api.id.toString())}`);
  say('web', `answer with a token for another audience: ${await call('spiffe://demo.svidkit.local/ns/demo/sa/other')}`);
  await new Promise<void>((r) => server.close(() => r()));
  say('demo', `done; SVID files are under ${dir}`);
}

process.once('SIGINT', () => {
  say('demo', 'interrupted');
  process.exit(130);
});

main().catch((err: unknown) => {
  const code = isSvidkitError(err) ? err.code : 'ERR_INTERNAL';
  process.stderr.write(`error ${code}: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
