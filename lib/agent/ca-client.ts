/**
 * The agent's side of the CA's Node service: a TLS channel that trusts only the CA's bundle and checks
 * the CA's SPIFFE ID, with the agent's SVID as client certificate once it has one. Identity and roots
 * are read from callbacks on every (re)connect, so rotation needs no restart of the agent.
 */
import type { PeerCertificate } from 'node:tls';
import { credentials, type ServiceError, status } from '@grpc/grpc-js';
import { SvidkitError } from '../errors/index.js';
import type { BatchNewX509SvidResponse__Output } from '../generated/svidkit/ca/v1/BatchNewX509SvidResponse.js';
import { caProto } from '../ca-api/proto.js';
import { canonicalSelectors } from '../ca-api/selectors.js';
import { SpiffeId } from '../spiffeid/index.js';
import type {
  AttestAgentResponse__Output,
  Bundle__Output,
  ListAuthorizedEntriesResponse__Output,
  NewJwtSvidResponse__Output,
  NodeClient,
  RenewAgentResponse__Output,
} from '../ca-api/index.js';

/** The agent's current SVID, as PEM, for the client side of mTLS. */
export interface ClientIdentity {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

/** Options of CaClient. */
export interface CaClientOptions {
  /** host:port of the CA's Node service. */
  readonly address: string;
  /** The SPIFFE ID the CA's serving certificate must carry. */
  readonly caId: SpiffeId;
  /** DNS name checked by TLS before the SPIFFE ID check; the CA's serving SVID carries it. */
  readonly serverName: string;
  /** PEM roots the CA's certificate must chain to. */
  readonly roots: () => string;
  /** The agent's SVID, or undefined before attestation. */
  readonly identity: () => ClientIdentity | undefined;
  /** Deadline of one unary call. */
  readonly timeoutMs?: number;
}

/** A registration entry as the agent holds it: what the CA sent, its SPIFFE ID and selectors checked. */
export interface AuthorizedEntry {
  readonly id: string;
  readonly spiffeId: string;
  readonly parentId: string;
  readonly x509SvidTtlSeconds: number;
  readonly jwtSvidTtlSeconds: number;
  readonly dnsNames: readonly string[];
  /** Canonical (checked, de-duplicated, sorted); empty for an entry of the configured file workloads. */
  readonly selectors: readonly string[];
  /** Unix seconds. */
  readonly createdAt: number;
}

/** An entry of ListAuthorizedEntries the agent did not take, and why. */
export interface RefusedEntry {
  readonly id: string;
  readonly spiffeId: string;
  readonly reason: string;
}

// Only for messages: a hostile or broken answer must not put a megabyte into a log line.
const cut = (s: string) => (s.length > 128 ? `${s.slice(0, 128)}...` : s);

/**
 * The entries of a ListAuthorizedEntries answer the agent can use. An entry with a SPIFFE ID or a
 * selector this agent cannot read (a newer CA's selector type, a damaged store) is refused on its
 * own: the others still serve, and the agent never guesses what a selector it cannot read meant.
 */
export function readAuthorizedEntries(res: ListAuthorizedEntriesResponse__Output): {
  entries: AuthorizedEntry[];
  refused: RefusedEntry[];
} {
  const entries: AuthorizedEntry[] = [];
  const refused: RefusedEntry[] = [];
  for (const e of res.entries) {
    let selectors: string[];
    try {
      SpiffeId.parse(e.spiffeId);
      selectors = canonicalSelectors(e.selectors);
    } catch (err) {
      const reason = err instanceof SvidkitError ? err.message : 'unreadable entry';
      refused.push({ id: cut(e.id), spiffeId: cut(e.spiffeId), reason });
      continue;
    }
    entries.push({
      id: e.id,
      spiffeId: e.spiffeId,
      parentId: e.parentId,
      x509SvidTtlSeconds: e.x509SvidTtlSeconds,
      jwtSvidTtlSeconds: e.jwtSvidTtlSeconds,
      dnsNames: [...e.dnsNames],
      selectors,
      createdAt: e.createdAt,
    });
  }
  return { entries, refused };
}

/** A gRPC failure with the status code kept, so callers can tell "denied" from "unreachable". */
export class CaCallError extends SvidkitError {
  readonly grpcCode: status;
  constructor(method: string, err: ServiceError) {
    super('ERR_AGENT_CA', `agent: ${method} failed: ${status[err.code] ?? err.code}: ${err.details || err.message}`, {
      cause: err,
    });
    this.grpcCode = err.code;
  }
}

function uriSans(cert: PeerCertificate): string[] {
  const san = cert.subjectaltname ?? '';
  // Node prints "URI:spiffe://td/x, DNS:name"; values with special characters are JSON-quoted.
  return san
    .split(/,\s*/)
    .filter((p) => p.startsWith('URI:'))
    .map((p) => p.slice(4).replace(/^"(.*)"$/, '$1'));
}

/** A client of the CA's Node service. */
export class CaClient {
  readonly #opts: CaClientOptions;
  #client: NodeClient | undefined;
  #key = '';

  constructor(opts: CaClientOptions) {
    this.#opts = opts;
  }

  /** The gRPC client for the current roots and identity; rebuilt when either changed. */
  #node(): NodeClient {
    const roots = this.#opts.roots();
    const id = this.#opts.identity();
    const key = `${roots}\n${id?.certificatePem ?? ''}`;
    if (this.#client && key === this.#key) return this.#client;
    this.#client?.close();
    const caId = this.#opts.caId.toString();
    const creds = credentials.createSsl(
      Buffer.from(roots),
      id ? Buffer.from(id.privateKeyPem) : null,
      id ? Buffer.from(id.certificatePem) : null,
      {
        // After OpenSSL's chain check and grpc-js's name check, insist on the CA's SPIFFE ID.
        checkServerIdentity: (_host, cert) =>
          uriSans(cert).includes(caId) ? undefined : new Error(`the server is not ${caId}`),
      },
    );
    const Node = caProto().svidkit.ca.v1.Node;
    this.#client = new Node(this.#opts.address, creds, {
      'grpc.ssl_target_name_override': this.#opts.serverName,
      'grpc.default_authority': this.#opts.serverName,
    }) as unknown as NodeClient;
    this.#key = key;
    return this.#client;
  }

  #unary<Res>(
    method: string,
    fn: (c: NodeClient, deadline: Date, cb: (err: ServiceError | null, res?: Res) => void) => unknown,
  ): Promise<Res> {
    const deadline = new Date(Date.now() + (this.#opts.timeoutMs ?? 15_000));
    return new Promise((resolve, reject) =>
      fn(this.#node(), deadline, (err, res) => (err ? reject(new CaCallError(method, err)) : resolve(res!))),
    );
  }

  /** Attests with a join token or a Kubernetes token; returns the agent SVID and the bundle. */
  attest(
    credential: { joinToken: string } | { k8sPsat: { token: string; cluster?: string } },
    csr: Buffer,
  ): Promise<AttestAgentResponse__Output> {
    const req =
      'joinToken' in credential
        ? { joinToken: { token: credential.joinToken }, csr }
        : { k8sPsat: { token: credential.k8sPsat.token, cluster: credential.k8sPsat.cluster ?? '' }, csr };
    return this.#unary('AttestAgent', (c, deadline, cb) => c.AttestAgent(req, { deadline }, cb));
  }

  /** Renews the agent's own SVID over mTLS. */
  renew(csr: Buffer): Promise<RenewAgentResponse__Output> {
    return this.#unary('RenewAgent', (c, deadline, cb) => c.RenewAgent({ csr }, { deadline }, cb));
  }

  /** The entries this agent is parent of. */
  listEntries(): Promise<ListAuthorizedEntriesResponse__Output> {
    return this.#unary('ListAuthorizedEntries', (c, deadline, cb) => c.ListAuthorizedEntries({}, { deadline }, cb));
  }

  /** Sends CSRs in one batch; each item has its own result. */
  batchX509(params: { entryId: string; csr: Buffer }[]): Promise<BatchNewX509SvidResponse__Output> {
    return this.#unary('BatchNewX509Svid', (c, deadline, cb) => c.BatchNewX509Svid({ params }, { deadline }, cb));
  }

  /** A JWT-SVID for an entry and audiences. */
  newJwt(entryId: string, audience: string[]): Promise<NewJwtSvidResponse__Output> {
    return this.#unary('NewJwtSvid', (c, deadline, cb) => c.NewJwtSvid({ entryId, audience }, { deadline }, cb));
  }

  /** Opens the WatchBundle stream; returns a function that cancels it. */
  watchBundle(onBundle: (b: Bundle__Output) => void, onEnd: (err: SvidkitError | undefined) => void): () => void {
    const stream = this.#node().WatchBundle({});
    let done = false;
    const finish = (err: SvidkitError | undefined) => {
      if (done) return;
      done = true;
      onEnd(err);
    };
    stream.on('data', onBundle);
    stream.on('error', (err: ServiceError) =>
      finish(err.code === status.CANCELLED ? undefined : new CaCallError('WatchBundle', err)),
    );
    stream.on('end', () => finish(undefined));
    return () => {
      done = true;
      stream.cancel();
    };
  }

  /** Closes the channel. */
  close(): void {
    this.#client?.close();
    this.#client = undefined;
  }
}
