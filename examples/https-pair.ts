/**
 * Two workloads over HTTPS with SPIFFE mTLS, each reading its SVID and bundles from the files an
 * svidkit-agent keeps fresh (rotations apply without a restart):
 *
 *   node dist/examples/https-pair.js <dir>
 *
 * where <dir>/server and <dir>/client are the agent's output directories for
 * spiffe://example.org/ns/demo/sa/server and spiffe://example.org/ns/demo/sa/client.
 */
import { once } from 'node:events';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { authorizeId } from '../lib/authorize/index.js';
import { FileSource } from '../lib/source/index.js';
import { createMtlsHttpsServer, mtlsHttpsAgent, peerSpiffeId } from '../lib/tls/index.js';

const SERVER_ID = 'spiffe://example.org/ns/demo/sa/server';
const CLIENT_ID = 'spiffe://example.org/ns/demo/sa/client';

async function main(dir: string): Promise<void> {
  const serverSource = await FileSource.open(join(dir, 'server'));
  const clientSource = await FileSource.open(join(dir, 'client'));

  // The server: only the demo client gets in; anyone else is refused before a request is read.
  const server = createMtlsHttpsServer(serverSource, authorizeId(CLIENT_ID), (req, res) => {
    res.end(`hello, ${String(peerSpiffeId(req))}\n`);
  });
  server.on('tlsClientError', (err) => process.stderr.write(`server refused a client: ${err.message}\n`));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  // The client: talks only to the demo server.
  const agent = mtlsHttpsAgent(clientSource, authorizeId(SERVER_ID));
  try {
    const { from, body } = await new Promise<{ from: string; body: string }>((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ from: String(peerSpiffeId(res)), body }));
          res.on('error', reject);
        })
        .on('error', reject);
    });
    process.stdout.write(`${from} answered: ${body}`);
  } finally {
    agent.destroy();
    server.close();
    await Promise.all([serverSource.close(), clientSource.close()]);
  }
}

const dir = process.argv[2];
if (dir === undefined) {
  process.stderr.write('usage: node dist/examples/https-pair.js <dir with server/ and client/ SVID directories>\n');
  process.exitCode = 2;
} else {
  main(dir).catch((err: unknown) => {
    const code = (err as { code?: unknown }).code;
    process.stderr.write(
      `https-pair: ${err instanceof Error ? err.message : String(err)}${code ? ` (${String(code)})` : ''}\n`,
    );
    process.exitCode = 1;
  });
}
