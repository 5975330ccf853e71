/** Test helpers for Kubernetes PSAT attestation: realistic token claims and a local OIDC issuer. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { b64, edit } from './jwt.js';

/** The facts a projected service-account token states about its pod. */
export interface PsatFacts {
  iss: string;
  aud: string | string[];
  now: number;
  lifetime?: number;
  namespace?: string;
  serviceAccount?: string;
  podName?: string;
  nodeName?: string;
}

/** Claims shaped like those of a Kubernetes 1.30+ projected token (`kubectl create token --bound-object-kind Pod`). */
export function psatClaims(f: PsatFacts): Record<string, unknown> {
  const ns = f.namespace ?? 'svidkit';
  const sa = f.serviceAccount ?? 'svidkit-agent';
  const lifetime = f.lifetime ?? 3600;
  return {
    aud: f.aud,
    exp: f.now + lifetime,
    iat: f.now - 60,
    iss: f.iss,
    jti: '5a3c1e0b-7f51-4c3a-9d0e-2b8f6a1d4c77',
    'kubernetes.io': {
      namespace: ns,
      node: { name: f.nodeName ?? 'worker-1.example.internal', uid: '0b7c3d2e-1f4a-4b5c-8d6e-7f8091a2b3c4' },
      pod: { name: 'svidkit-agent-x7k2p', uid: 'c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f' },
      serviceaccount: { name: sa, uid: 'f0e1d2c3-b4a5-4697-8a9b-0c1d2e3f4a5b' },
      warnafter: f.now + lifetime - 600,
    },
    nbf: f.now - 60,
    sub: `system:serviceaccount:${ns}:${sa}`,
  };
}

/** Applies changes to a nested claim object at a path of member names (undefined removes a member). */
export function editAt(
  claims: Record<string, unknown>,
  path: string[],
  changes: Record<string, unknown>,
): Record<string, unknown> {
  const copy = structuredClone(claims);
  let target: Record<string, unknown> = copy;
  for (const seg of path) {
    target = target[seg] as Record<string, unknown>;
  }
  const edited = edit(target, changes);
  for (const k of Object.keys(target)) delete target[k];
  Object.assign(target, edited);
  return copy;
}

/** Signs claims with jose as a Kubernetes API server would (header: alg and kid only). */
export function signPsat(
  claims: Record<string, unknown>,
  key: KeyObject | Uint8Array,
  header: { alg: string; kid?: string; [k: string]: unknown },
): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(header).sign(key);
}

/** An unsigned token (alg "none" or any header), built by hand because jose will not sign with none. */
export function unsignedToken(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  return `${b64(header)}.${b64(claims)}.`;
}

/** What one route of the test server answers. */
export interface Reply {
  status?: number;
  body: string | Uint8Array | object;
}

/** A real HTTP server on 127.0.0.1 that counts requests per path. */
export interface TestHttpServer {
  /** `http://127.0.0.1:<port>`. */
  readonly base: string;
  readonly port: number;
  /** Routes by request path; replace entries at will. */
  readonly routes: Map<string, () => Reply>;
  /** Requests seen per path, including unrouted ones. */
  readonly counts: Map<string, number>;
  count(path: string): number;
  close(): Promise<void>;
}

/** Starts the server on an ephemeral port. */
export async function startHttpServer(): Promise<TestHttpServer> {
  const routes = new Map<string, () => Reply>();
  const counts = new Map<string, number>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const route = routes.get(path);
    if (route === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    const reply = route();
    const body =
      typeof reply.body === 'string' || reply.body instanceof Uint8Array ? reply.body : JSON.stringify(reply.body);
    res.writeHead(reply.status ?? 200, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    routes,
    counts,
    count: (path) => counts.get(path) ?? 0,
    close: () =>
      new Promise<void>((resolve, reject) => {
        // fetch keeps connections alive; drop them so close() does not wait for their idle timeout.
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/**
 * Serves an OIDC issuer at `<base><prefix>`: its discovery document and, at `<prefix>/openid/v1/jwks`
 * (the path Kubernetes uses), whatever `jwks()` returns. Returns the issuer URL and the two paths.
 */
export function serveIssuer(
  server: TestHttpServer,
  prefix: string,
  jwks: () => Reply,
  discovery: (issuer: string, jwksUri: string) => Record<string, unknown> = (issuer, jwksUri) => ({
    issuer,
    jwks_uri: jwksUri,
    response_types_supported: ['id_token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256', 'ES256'],
  }),
): { issuer: string; discoveryPath: string; jwksPath: string } {
  const issuer = `${server.base}${prefix}`;
  const discoveryPath = `${prefix}/.well-known/openid-configuration`;
  const jwksPath = `${prefix}/openid/v1/jwks`;
  server.routes.set(discoveryPath, () => ({ body: discovery(issuer, `${server.base}${jwksPath}`) }));
  server.routes.set(jwksPath, jwks);
  return { issuer, discoveryPath, jwksPath };
}
