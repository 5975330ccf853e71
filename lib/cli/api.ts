/**
 * `svidkit api ...`: the operator's Workload API client, for asking an endpoint (svidkit-agent, a
 * SPIRE agent) what identity it gives the calling process: `fetch x509 [--write DIR]`, `fetch jwt`,
 * `fetch bundles`, `validate jwt` and `watch`. The endpoint comes from --socket, else
 * SPIFFE_ENDPOINT_SOCKET, as a `unix:///path` or `tcp://IP:port` URI. Exit codes are the admin
 * commands': 0 done, 1 refused (PERMISSION_DENIED: no identity for this process), 2 usage, 3 nothing
 * answers at the endpoint, or not in time (worth retrying).
 *
 * `--write DIR` delivers the default SVID through the agent's own atomic writer, so the directory is
 * exactly what svidkit-agent writes for a file workload (spiffe-helper's names, `..data` swapped by
 * rename) and FileSource and `svidkit doctor` read it as they read the agent's.
 */
import { type Command, Option } from 'commander';
import { resolveOutputDir } from '../agent/trust.js';
import { writeWorkloadFiles } from '../agent/writer.js';
import type { JwtBundle, X509Bundle } from '../bundle/index.js';
import { isSvidkitError, SvidkitError } from '../errors/index.js';
import type { X509SVIDResponse__Output } from '../generated/workload/X509SVIDResponse.js';
import { MAX_TOKEN_BYTES } from '../jwtsvid/index.js';
import { DEFAULT_FILE_NAMES } from '../layout/index.js';
import { checkAudience, WorkloadApiClient } from '../source/workloadapi-client.js';
import { joinBundles, parseX509SvidResponse, type X509Context } from '../source/workloadapi-parse.js';
import { defaultBackoff, StreamWatcher, workloadMetadata } from '../source/workloadapi-watch.js';
import { ENDPOINT_SOCKET_ENV, parseEndpointAddress } from '../workloadapi/address.js';
import { type CliIo, readInput } from './io.js';
import { parseWholeNumber, repeatable, spiffeIdArg } from './options.js';
import { table } from './table.js';

/** Default --timeout of the api commands, in seconds. */
export const DEFAULT_API_TIMEOUT_SECONDS = 10;

interface EndpointOptions {
  socket?: string;
  timeout?: string;
  json?: boolean;
}

/** Where to connect and for how long, checked before anything is sent. */
interface Endpoint {
  /** The address as given: what messages show, since the operator typed it. */
  readonly address: string;
  readonly timeoutMs: number;
}

function endpointOption(): Option {
  return new Option(
    '--socket <address>',
    `the Workload API endpoint, unix:///path or tcp://IP:port (default: $${ENDPOINT_SOCKET_ENV})`,
  );
}

function timeoutOption(): Option {
  return new Option('--timeout <seconds>', 'give up on the endpoint after this long').default(
    String(DEFAULT_API_TIMEOUT_SECONDS),
  );
}

/** The endpoint the options or the environment name; a bad or missing address is a usage error. */
function endpointOf(env: NodeJS.ProcessEnv, opts: EndpointOptions): Endpoint {
  const timeoutMs = parseWholeNumber(opts.timeout ?? String(DEFAULT_API_TIMEOUT_SECONDS), '--timeout', 1, 3600) * 1000;
  const fromEnv = env[ENDPOINT_SOCKET_ENV];
  const [address, origin] =
    opts.socket !== undefined ? [opts.socket, '--socket'] : [fromEnv === '' ? undefined : fromEnv, ENDPOINT_SOCKET_ENV];
  if (address === undefined) {
    throw new SvidkitError(
      'ERR_USAGE',
      `cli: no Workload API endpoint: pass --socket unix:///path/to/api.sock or set ${ENDPOINT_SOCKET_ENV}`,
    );
  }
  try {
    parseEndpointAddress(address);
  } catch (err) {
    if (!isSvidkitError(err, 'ERR_WORKLOADAPI_ADDRESS')) throw err;
    throw new SvidkitError('ERR_USAGE', `cli: ${origin}: ${err.plainMessage}`, { cause: err, detail: err.detail });
  }
  return { address, timeoutMs };
}

/**
 * The client's error in the words an operator needs: who refused and what it means. The code stays,
 * so scripts and the exit code see what the client saw; anything else passes unchanged.
 */
function explain(err: unknown, at: Endpoint): unknown {
  if (!isSvidkitError(err)) return err;
  const keep = { cause: err, detail: err.detail };
  switch (err.code) {
    case 'ERR_WORKLOADAPI_PERMISSION_DENIED':
      return new SvidkitError(
        err.code,
        `api: the agent at ${at.address} has no identity for this process (PERMISSION_DENIED)`,
        keep,
      );
    case 'ERR_WORKLOADAPI_UNAVAILABLE':
      return new SvidkitError(
        err.code,
        `api: cannot reach the Workload API at ${at.address} (UNAVAILABLE): is the agent running and serving this socket?`,
        keep,
      );
    case 'ERR_WORKLOADAPI_TIMEOUT':
      return new SvidkitError(
        err.code,
        `api: the Workload API at ${at.address} did not answer within ${at.timeoutMs / 1000} s`,
        keep,
      );
    default:
      return err;
  }
}

/** Runs `fn` with a client of the endpoint, closing it afterwards; its failures explained. */
async function withClient<T>(at: Endpoint, fn: (c: WorkloadApiClient) => Promise<T>): Promise<T> {
  const client = await WorkloadApiClient.connect({ address: at.address, timeoutMs: at.timeoutMs });
  try {
    return await fn(client);
  } catch (err) {
    throw explain(err, at);
  } finally {
    client.close();
  }
}

/** The --audience values as the client will check them, refused as a usage error. */
function audienceArgs(values: readonly string[]): string[] {
  try {
    return checkAudience(values);
  } catch (err) {
    if (!isSvidkitError(err, 'ERR_WORKLOADAPI_REQUEST')) throw err;
    throw new SvidkitError('ERR_USAGE', `cli: --audience: ${err.plainMessage.replace(/^audience /, '')}`, {
      cause: err,
    });
  }
}

function json(io: CliIo, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

/** What is printed of an X.509-SVID: never its key. */
function svidView(ctx: X509Context) {
  return ctx.svids.map(({ svid, hint }) => ({
    spiffe_id: svid.id.toString(),
    hint,
    serial: svid.leaf.serialHex,
    not_after: svid.expiresAt.toISOString(),
  }));
}

function trustDomains(bundles: ReadonlyMap<string, unknown>): string[] {
  return [...bundles.keys()].sort();
}

/**
 * Writes the default SVID (the first one, as spiffe-helper does: one directory holds one identity,
 * at fixed names a consumer can be configured with) and every bundle into `dir`, atomically. The
 * directory is checked as the agent checks its output directories: no symlink as the directory,
 * nothing on the way writable by other users.
 */
async function writeSvidDir(dir: string, ctx: X509Context, jwt: ReadonlyMap<string, JwtBundle>): Promise<string> {
  const real = await resolveOutputDir(dir);
  await writeWorkloadFiles(
    {
      svid: ctx.svids[0]!.svid,
      bundles: joinBundles(ctx.bundles, jwt),
      jwtTokens: new Map(),
      // meta.json's version counts the agent's writes; a one-shot write has no history to count.
      version: 0,
    },
    { dir: real },
  );
  return real;
}

function rootRows(b: X509Bundle | undefined) {
  return (b?.authorities() ?? []).map((c) => ({
    subject: c.subject.replace(/\n/g, ', '),
    not_after: c.notAfter.toISOString(),
    sha256: c.fingerprint256(),
  }));
}

function keyRows(b: JwtBundle | undefined) {
  return (b?.authorities() ?? []).map((a) => ({ kid: a.kid, kty: a.jwk.kty, crv: a.jwk.crv }));
}

/** Registers `api fetch x509|jwt|bundles`, `api validate jwt` and `api watch`. `env` gives SPIFFE_ENDPOINT_SOCKET. */
export function registerApiCommands(program: Command, io: CliIo, env: NodeJS.ProcessEnv = process.env): void {
  const common = (cmd: Command) => cmd.addOption(endpointOption()).addOption(timeoutOption());
  const api = program
    .command('api')
    .description("this process's identity from a Workload API endpoint (svidkit-agent, a SPIRE agent)");
  const fetch = api.command('fetch').description('ask the endpoint once and print what it serves');

  common(fetch.command('x509'))
    .description('the X.509-SVIDs of this process (the first is the default) and the trust domains of the bundles')
    .option(
      '--write <dir>',
      "write the default SVID, its key (0600) and the bundles into this directory, as the agent's files",
    )
    .option('--json', 'print JSON')
    .action(async (opts: EndpointOptions & { write?: string }) => {
      const at = endpointOf(env, opts);
      const { ctx, dir } = await withClient(at, async (c) => {
        const got = await c.fetchX509Context();
        if (opts.write === undefined) return { ctx: got, dir: undefined };
        // The agent's layout holds the JWT bundles too: the directory is then complete for FileSource.
        return { ctx: got, dir: await writeSvidDir(opts.write, got, await c.fetchJwtBundles()) };
      });
      const svids = svidView(ctx);
      const written = dir && {
        dir,
        spiffe_id: svids[0]!.spiffe_id,
        svid: DEFAULT_FILE_NAMES.svid,
        key: DEFAULT_FILE_NAMES.key,
        bundle: DEFAULT_FILE_NAMES.bundle,
      };
      if (opts.json) return json(io, { svids, trust_domains: trustDomains(ctx.bundles), ...(written && { written }) });
      io.stdout(
        table(
          ['SPIFFE ID', 'HINT', 'SERIAL', 'NOT AFTER'],
          svids.map((s) => [s.spiffe_id, s.hint || '-', s.serial, s.not_after]),
        ),
      );
      io.stdout(`trust domains: ${trustDomains(ctx.bundles).join(', ')}\n`);
      if (written) {
        io.stdout(
          `wrote ${written.spiffe_id} to ${written.dir} (${written.svid}, ${written.key}, ${written.bundle})\n`,
        );
      }
    });

  common(fetch.command('jwt'))
    .description('fresh JWT-SVIDs for the audiences; prints each token on its own line (the default first)')
    .requiredOption('--audience <aud>', 'an audience the tokens are for (repeatable)', repeatable)
    .option('--spiffe-id <id>', 'only a token for this SPIFFE ID (one of this process’s identities)')
    .option('--json', 'print JSON with each token’s SPIFFE ID, hint and expiry')
    .action(async (opts: EndpointOptions & { audience: string[]; spiffeId?: string }) => {
      const audience = audienceArgs(opts.audience);
      const spiffeId = opts.spiffeId === undefined ? undefined : spiffeIdArg(opts.spiffeId, '--spiffe-id');
      const at = endpointOf(env, opts);
      const svids = await withClient(at, (c) => c.fetchJwtSvids({ audience, ...(spiffeId && { spiffeId }) }));
      // The tokens are this command's output: stdout only, never a message or a log line.
      if (opts.json) {
        return json(io, {
          svids: svids.map(({ svid, hint }) => ({
            spiffe_id: svid.id.toString(),
            hint,
            audience: [...svid.audience],
            expires_at: svid.expiry.toISOString(),
            token: svid.marshal(),
          })),
        });
      }
      io.stdout(svids.map(({ svid }) => `${svid.marshal()}\n`).join(''));
    });

  common(fetch.command('bundles'))
    .description('the X.509 and JWT bundles the endpoint serves, per trust domain')
    .option('--json', 'print JSON')
    .action(async (opts: EndpointOptions) => {
      const at = endpointOf(env, opts);
      const [x509, jwt] = await withClient(at, (c) => Promise.all([c.fetchX509Bundles(), c.fetchJwtBundles()]));
      const bundles = [...new Set([...x509.keys(), ...jwt.keys()])].sort().map((td) => ({
        trust_domain: td,
        x509_authorities: rootRows(x509.get(td)),
        jwt_authorities: keyRows(jwt.get(td)),
      }));
      if (opts.json) return json(io, { bundles });
      io.stdout(
        bundles
          .map(
            (b) =>
              `trust domain: ${b.trust_domain}\n\n` +
              table(
                ['X.509 ROOT', 'NOT AFTER', 'SHA-256'],
                b.x509_authorities.map((r) => [r.subject, r.not_after, r.sha256]),
              ) +
              '\n' +
              table(
                ['JWT KEY ID', 'TYPE'],
                b.jwt_authorities.map((k) => [k.kid, [k.kty, k.crv].filter(Boolean).join(' ')]),
              ),
          )
          .join('\n'),
      );
    });

  const validate = api.command('validate').description('have the endpoint check a credential');
  common(validate.command('jwt'))
    .description('validate a JWT-SVID through the endpoint (ValidateJWTSVID); prints its SPIFFE ID and claims')
    .requiredOption('--audience <aud>', 'the audience this validator is')
    .requiredOption('--token <file>', 'file holding the token, or - for stdin')
    .option('--json', 'print JSON')
    .action(async (opts: EndpointOptions & { audience: string; token: string }) => {
      const [audience] = audienceArgs([opts.audience]);
      const at = endpointOf(env, opts);
      // Most tools end a token file with a newline; whitespace is never part of a JWS.
      const token = (await readInput(opts.token, MAX_TOKEN_BYTES + 64, io)).toString('utf8').trim();
      if (token === '')
        throw new SvidkitError(
          'ERR_USAGE',
          `cli: --token: ${opts.token === '-' ? 'standard input' : opts.token} holds no token`,
        );
      const res = await withClient(at, (c) => c.validateJwtSvid(token, audience!));
      if (opts.json) return json(io, { spiffe_id: res.spiffeId.toString(), claims: res.claims });
      io.stdout(`spiffe id: ${res.spiffeId.toString()}\nclaims:\n${JSON.stringify(res.claims, null, 2)}\n`);
    });

  common(api.command('watch'))
    .description('follow the X.509-SVID stream and print one line per update, until SIGINT or SIGTERM')
    .option('--json', 'print one JSON object per line')
    .action(async (opts: EndpointOptions) => {
      await watch(io, endpointOf(env, opts), opts.json === true);
    });
}

/**
 * Follows FetchX509SVID until SIGINT or SIGTERM. The first message must come within the timeout and
 * any failure before it ends the command, as `fetch x509` would; afterwards the stream is reopened
 * with the library's backoff, a denial is printed as an update (the identity went away), and other
 * failures are warned about once on stderr.
 */
async function watch(io: CliIo, at: Endpoint, asJson: boolean): Promise<void> {
  const client = await WorkloadApiClient.connect({ address: at.address, timeoutMs: at.timeoutMs });
  let watcher: StreamWatcher<X509SVIDResponse__Output> | undefined;
  let stop: (() => void) | undefined;
  // The watcher's reconnection timer does not keep a process alive (a library must not); between a
  // dropped stream and the next attempt nothing else would, and the command would end unasked.
  const alive = setInterval(() => undefined, 0x7fffffff);
  try {
    await new Promise<void>((resolve, reject) => {
      let seen = false;
      let fingerprint: string | undefined;
      let problem: string | undefined;
      const print = (line: Record<string, unknown>, text: string) => {
        const time = new Date().toISOString();
        io.stdout(asJson ? `${JSON.stringify({ time, ...line })}\n` : `${time} ${text}\n`);
      };
      const timer = setTimeout(
        () =>
          reject(
            new SvidkitError('ERR_WORKLOADAPI_TIMEOUT', 'workloadapi: FetchX509SVID: no first message in time', {
              detail: { method: 'FetchX509SVID' },
            }),
          ),
        at.timeoutMs,
      );
      stop = () => {
        clearTimeout(timer);
        resolve();
      };
      const fail = (err: SvidkitError) => {
        clearTimeout(timer);
        reject(err);
      };
      watcher = new StreamWatcher<X509SVIDResponse__Output>(
        client.grpc,
        'FetchX509SVID',
        {
          open: () => client.raw.FetchX509SVID({}, workloadMetadata(client.grpc)),
          message: (msg) => {
            let ctx: X509Context;
            try {
              ctx = parseX509SvidResponse(msg, new Date());
            } catch (err) {
              const e = isSvidkitError(err)
                ? err
                : new SvidkitError(
                    'ERR_WORKLOADAPI_BAD_RESPONSE',
                    'workloadapi: the endpoint sent a message that cannot be read',
                  );
              if (!seen) return fail(e);
              // The last good state is what the endpoint last meant; the refusal is a warning.
              io.stderr(`warning ${e.code}: ${e.message}\n`);
              return;
            }
            if (!seen) clearTimeout(timer);
            seen = true;
            problem = undefined;
            // Streams resend the full state; a resend of the same state is no update.
            if (ctx.fingerprint === fingerprint) return;
            fingerprint = ctx.fingerprint;
            const svids = svidView(ctx);
            const tds = trustDomains(ctx.bundles);
            const described = svids
              .map((s) => `${s.spiffe_id}${s.hint ? ` [${s.hint}]` : ''} serial ${s.serial} expires ${s.not_after}`)
              .join(', ');
            print({ svids, trust_domains: tds }, `${described}; trust domains ${tds.join(', ')}`);
          },
          failed: (err, final) => {
            if (!seen || final) return fail(err);
            if (problem === err.code) return;
            problem = err.code;
            if (err.code === 'ERR_WORKLOADAPI_PERMISSION_DENIED') {
              // An empty state: the next message, if the identity comes back, is an update again.
              fingerprint = undefined;
              print({ svids: [], denied: true }, 'no identity for this process (PERMISSION_DENIED)');
            } else {
              io.stderr(`warning ${err.code}: ${(explain(err, at) as SvidkitError).message}; reconnecting\n`);
            }
          },
        },
        defaultBackoff,
      );
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      watcher.start();
    });
  } catch (err) {
    throw explain(err, at);
  } finally {
    if (stop) {
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
    }
    clearInterval(alive);
    watcher?.stop();
    client.close();
  }
}
