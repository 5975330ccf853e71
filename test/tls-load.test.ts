import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { authorizeId, authorizeMemberOf } from '../lib/authorize/index.js';
import { BundleSet } from '../lib/bundle/index.js';
import { StaticSource } from '../lib/source/index.js';
import { createMtlsHttpsServer, mtlsHttpsAgent, peerSpiffeId } from '../lib/tls/index.js';
import { TestCa } from './helpers/ca.js';

describe('https with SPIFFE mTLS: 50 rotations under continuous load', function () {
  this.timeout(120_000);

  it('serves every request from 16 concurrent clients through 50 rotation steps (server, client or both each step)', async () => {
    const now = Date.now();
    const ca = TestCa.root({ notBefore: new Date(now - 86400_000), notAfter: new Date(now + 86400_000) });
    const window = () => ({ notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3600_000) });
    const bundles = new BundleSet([ca.bundle()]);
    const serverSource = new StaticSource({ svid: ca.svid('/ns/load/sa/server', window()), bundles });
    const clientSource = new StaticSource({ svid: ca.svid('/ns/load/sa/client', window()), bundles });
    const servedSerials = new Set<string>();
    const server = createMtlsHttpsServer(
      serverSource,
      authorizeId('spiffe://example.org/ns/load/sa/client'),
      (req, res) => {
        res.end(String(peerSpiffeId(req)));
      },
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const agent = mtlsHttpsAgent(clientSource, authorizeMemberOf('example.org'), { keepAlive: true, maxSockets: 4 });

    let ok = 0;
    let failed = 0;
    const errors = new Set<string>();
    let stop = false;
    const request = () =>
      new Promise<void>((resolve) => {
        const req = https.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
          const cert = (res.socket as import('node:tls').TLSSocket | null)?.getPeerCertificate?.();
          if (cert?.serialNumber) servedSerials.add(cert.serialNumber.toLowerCase());
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => {
            if (res.statusCode === 200 && body === 'spiffe://example.org/ns/load/sa/client') ok++;
            else failed++;
            resolve();
          });
        });
        req.on('error', (err) => {
          failed++;
          errors.add(err.message);
          resolve();
        });
      });
    const clients = Array.from({ length: 16 }, async () => {
      while (!stop) await request();
    });

    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 40));
      // Alternate which side rotates; every few steps both do. Fresh connections pick up the new SVIDs.
      if (i % 2 === 0) serverSource.set({ svid: ca.svid('/ns/load/sa/server', window()) });
      if (i % 2 === 1 || i % 5 === 0) clientSource.set({ svid: ca.svid('/ns/load/sa/client', window()) });
    }
    stop = true;
    await Promise.all(clients);
    agent.destroy();
    server.close();
    assert.equal(failed, 0, `failed requests: ${[...errors].join('; ')}`);
    assert.ok(ok > 100, `only ${ok} requests completed`);
    process.stdout.write(`      (${ok} requests, 0 failed, ${servedSerials.size} distinct server serials seen)\n`);
  });
});
