/**
 * The operator commands that talk to a running CA through its admin socket: `token`, `entry`,
 * `agent`, `bundle` and `ca`. Each prints a table (or a short line) for people and `--json` for
 * scripts. The socket comes from --socket, else SVIDKIT_ADMIN_SOCKET, else the CA's default
 * ./data/ca/admin.sock. Exit codes: 0 done, 1 refused or failed, 2 usage, 3 CA unreachable (retry).
 */
import { writeFile } from 'node:fs/promises';
import { type Command, Option } from 'commander';
import { SpiffeBundle } from '../bundle/index.js';
import { AdminClient, type AdminCaKey } from '../ca-api/admin-client.js';
import { canonicalSelectors } from '../ca-api/selectors.js';
import { isSvidkitError, SvidkitError } from '../errors/index.js';
import { TrustDomain } from '../spiffeid/index.js';
import type { CliIo } from './io.js';
import { parseWholeNumber, repeatable, spiffeIdArg } from './options.js';
import { isoSeconds, table } from './table.js';

/** Environment variable naming the admin socket when --socket is not given. */
export const ADMIN_SOCKET_ENV = 'SVIDKIT_ADMIN_SOCKET';
/** The CA's admin socket with its default data_dir, relative to the working directory. */
export const DEFAULT_ADMIN_SOCKET = 'data/ca/admin.sock';

interface SocketOptions {
  socket?: string;
  timeout?: string;
  json?: boolean;
}

function socketOption(): Option {
  return new Option(
    '--socket <path>',
    `the CA's admin socket (default: $${ADMIN_SOCKET_ENV} or ${DEFAULT_ADMIN_SOCKET})`,
  );
}

function timeoutOption(): Option {
  return new Option('--timeout <seconds>', 'give up on the CA after this long').default('10');
}

/** A positive whole number from the command line, or ERR_USAGE naming the option. */
function positiveInt(value: string, what: string, max = 2 ** 31 - 1): number {
  return parseWholeNumber(value, what, 1, max);
}

/** The --selector values checked as the CA will check them, or ERR_USAGE with the parser's reason. */
function selectorArgs(values: readonly string[]): string[] {
  try {
    return canonicalSelectors(values);
  } catch (err) {
    if (!isSvidkitError(err, 'ERR_SELECTOR_INVALID')) throw err;
    // The parser's message quotes the selector already; its list index means nothing on a command line.
    const why = err.plainMessage.replace(/^\[\d+\]: /, '');
    throw new SvidkitError('ERR_USAGE', `cli: --selector: ${why}`, { cause: err });
  }
}

/** Runs `fn` with a client of the CA the options name, closing it afterwards. */
async function withAdmin<T>(
  env: NodeJS.ProcessEnv,
  opts: SocketOptions,
  fn: (c: AdminClient) => Promise<T>,
): Promise<T> {
  const socket = opts.socket ?? env[ADMIN_SOCKET_ENV] ?? DEFAULT_ADMIN_SOCKET;
  const timeoutMs = positiveInt(opts.timeout ?? '10', '--timeout', 3600) * 1000;
  const client = new AdminClient(socket, { timeoutMs });
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

function json(io: CliIo, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

function keyRows(keys: readonly AdminCaKey[]): string[][] {
  return keys.map((k) => [k.id, k.kind, k.state, isoSeconds(k.notAfter), k.tainted ? 'yes' : 'no']);
}
const KEY_HEADER = ['ID', 'KIND', 'STATE', 'NOT AFTER', 'TAINTED'];

/** Registers token, entry, agent, bundle and ca. `env` gives SVIDKIT_ADMIN_SOCKET. */
export function registerAdminCommands(program: Command, io: CliIo, env: NodeJS.ProcessEnv = process.env): void {
  const common = (cmd: Command) => cmd.addOption(socketOption()).addOption(timeoutOption());

  const token = program.command('token').description('join tokens for attesting agents');
  common(token.command('create'))
    .description('create a one-time join token; prints the token (give it to exactly one agent)')
    .option('--ttl <seconds>', 'how long the token may be used', '600')
    .option('--json', 'print JSON')
    .action(async (opts: SocketOptions & { ttl: string }) => {
      const ttl = positiveInt(opts.ttl, '--ttl');
      const created = await withAdmin(env, opts, (c) => c.createJoinToken(ttl));
      if (opts.json) {
        json(io, { token: created.token, agent_id: created.agentId, expires_at: created.expiresAt.toISOString() });
      } else {
        io.stdout(
          `token:      ${created.token}\nagent id:   ${created.agentId}\nexpires at: ${created.expiresAt.toISOString()}\n`,
        );
      }
    });

  const entry = program.command('entry').description('registration entries: which workload IDs an agent may get');
  common(entry.command('create'))
    .description('register a workload SPIFFE ID under an agent')
    .requiredOption('--spiffe-id <id>', "the workload's SPIFFE ID")
    .requiredOption('--parent-id <id>', 'the SPIFFE ID of the agent that may fetch it')
    .option('--x509-ttl <seconds>', 'X.509-SVID lifetime (default: the CA default)')
    .option('--jwt-ttl <seconds>', 'JWT-SVID lifetime (default: the CA default)')
    .option('--dns <name...>', 'DNS names to put in the X.509-SVID')
    .option(
      '--selector <type:value>',
      'a Workload API caller gets this entry when it has every selector given (repeatable; e.g. unix:uid:1000)',
      repeatable,
    )
    .option('--json', 'print JSON')
    .action(
      async (
        opts: SocketOptions & {
          spiffeId: string;
          parentId: string;
          x509Ttl?: string;
          jwtTtl?: string;
          dns?: string[];
          selector?: string[];
        },
      ) => {
        const request = {
          spiffeId: spiffeIdArg(opts.spiffeId, '--spiffe-id'),
          parentId: spiffeIdArg(opts.parentId, '--parent-id'),
          x509SvidTtlSeconds: opts.x509Ttl === undefined ? 0 : positiveInt(opts.x509Ttl, '--x509-ttl'),
          jwtSvidTtlSeconds: opts.jwtTtl === undefined ? 0 : positiveInt(opts.jwtTtl, '--jwt-ttl'),
          dnsNames: opts.dns ?? [],
          selectors: selectorArgs(opts.selector ?? []),
        };
        const created = await withAdmin(env, opts, (c) => c.createEntry(request));
        if (opts.json) json(io, created);
        else {
          const sel = created.selectors.length === 0 ? '' : `, selectors ${created.selectors.join(' ')}`;
          io.stdout(`created entry ${created.id} for ${created.spiffeId} (parent ${created.parentId}${sel})\n`);
        }
      },
    );
  common(entry.command('list'))
    .description('list registration entries')
    .option('--parent-id <id>', 'only the entries of this agent')
    .option('--spiffe-id <id>', 'only the entries for this workload ID')
    .option('--json', 'print JSON')
    .action(async (opts: SocketOptions & { parentId?: string; spiffeId?: string }) => {
      const filter = {
        ...(opts.parentId !== undefined && { parentId: spiffeIdArg(opts.parentId, '--parent-id') }),
        ...(opts.spiffeId !== undefined && { spiffeId: spiffeIdArg(opts.spiffeId, '--spiffe-id') }),
      };
      const entries = await withAdmin(env, opts, (c) => c.listEntries(filter));
      if (opts.json) return json(io, entries);
      io.stdout(
        table(
          ['ID', 'SPIFFE ID', 'PARENT ID', 'X509 TTL', 'JWT TTL', 'DNS', 'SELECTORS'],
          entries.map((e) => [
            e.id,
            e.spiffeId,
            e.parentId,
            `${e.x509SvidTtlSeconds}s`,
            `${e.jwtSvidTtlSeconds}s`,
            e.dnsNames.join(',') || '-',
            // A name or path may hold a comma or a space; --json gives each selector exactly.
            e.selectors.join(',') || '-',
          ]),
        ),
      );
    });
  common(entry.command('delete'))
    .description('delete a registration entry by its ID')
    .argument('<id>', 'the entry ID (see entry list)')
    .action(async (id: string, opts: SocketOptions) => {
      await withAdmin(env, opts, (c) => c.deleteEntry(id));
      io.stdout(`deleted entry ${id}\n`);
    });

  const agent = program.command('agent').description('attested node agents');
  common(agent.command('list'))
    .description('list attested agents')
    .option('--json', 'print JSON')
    .action(async (opts: SocketOptions) => {
      const agents = await withAdmin(env, opts, (c) => c.listAgents());
      if (opts.json) return json(io, agents);
      io.stdout(
        table(
          ['SPIFFE ID', 'ATTESTATION', 'SVID SERIAL', 'SVID EXPIRES', 'BANNED'],
          agents.map((a) => [
            a.spiffeId,
            a.attestationType,
            a.serial,
            isoSeconds(a.expiresAt),
            a.banned ? 'yes' : 'no',
          ]),
        ),
      );
    });
  common(agent.command('ban'))
    .description('ban an agent: its SVID is refused from now on')
    .argument('<spiffe-id>', "the agent's SPIFFE ID (see agent list)")
    .action(async (id: string, opts: SocketOptions) => {
      const agentId = spiffeIdArg(id, 'agent ID');
      await withAdmin(env, opts, (c) => c.banAgent(agentId));
      io.stdout(`banned ${agentId}\n`);
    });

  const bundle = program.command('bundle').description("the CA's trust bundle");
  common(bundle.command('show'))
    .description('summarize the current bundle: X.509 roots and JWT keys')
    .option('--json', 'print JSON')
    .action(async (opts: SocketOptions) => {
      const b = await currentBundle(env, opts);
      const roots = b.x509.authorities().map((c) => ({
        subject: c.subject.replace(/\n/g, ', '),
        not_after: c.notAfter.toISOString(),
        sha256: c.fingerprint256(),
      }));
      const keys = b.jwt.authorities().map((a) => ({ kid: a.kid, kty: a.jwk.kty, crv: a.jwk.crv }));
      if (opts.json) {
        return json(io, {
          trust_domain: b.trustDomain.name,
          sequence: b.sequence ?? 0,
          x509_authorities: roots,
          jwt_authorities: keys,
        });
      }
      io.stdout(`trust domain: ${b.trustDomain.name}\nsequence:     ${b.sequence ?? 0}\n\n`);
      io.stdout(
        table(
          ['X.509 ROOT', 'NOT AFTER', 'SHA-256'],
          roots.map((r) => [r.subject, r.not_after, r.sha256]),
        ),
      );
      io.stdout('\n');
      io.stdout(
        table(
          ['JWT KEY ID', 'TYPE'],
          keys.map((k) => [k.kid, [k.kty, k.crv].filter(Boolean).join(' ')]),
        ),
      );
    });
  common(bundle.command('export'))
    .description('write the bundle for other systems: PEM roots or the SPIFFE bundle JSON')
    .addOption(new Option('--format <format>', 'pem or spiffe').choices(['pem', 'spiffe']).default('spiffe'))
    .option('--out <file>', 'write to this file instead of standard output')
    .action(async (opts: SocketOptions & { format: 'pem' | 'spiffe'; out?: string }) => {
      const b = await currentBundle(env, opts);
      const text = opts.format === 'pem' ? b.x509.toPem() : `${b.marshal()}\n`;
      if (opts.out === undefined) return io.stdout(text);
      try {
        // Public material only; 0644 so that other tools and users can read it.
        await writeFile(opts.out, text, { mode: 0o644 });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        throw new SvidkitError('ERR_IO', `io: cannot write ${opts.out} (${code})`, { cause: err });
      }
      io.stdout(`wrote ${opts.format === 'pem' ? 'PEM roots' : 'SPIFFE bundle'} to ${opts.out}\n`);
    });

  const ca = program.command('ca').description("the CA's signing keys");
  common(ca.command('status'))
    .description('trust domain and signing keys')
    .option('--json', 'print JSON')
    .action(async (opts: SocketOptions) => {
      const st = await withAdmin(env, opts, (c) => c.caStatus());
      if (opts.json) {
        return json(io, { trust_domain: st.trustDomain, keys: st.keys, bundle_sequence: st.bundle?.sequence ?? 0 });
      }
      io.stdout(`trust domain: ${st.trustDomain}\nbundle sequence: ${st.bundle?.sequence ?? 0}\n\n`);
      io.stdout(table(KEY_HEADER, keyRows(st.keys)));
    });
  common(ca.command('rotate'))
    .description('prepare and activate new signing keys now')
    .addOption(new Option('--kind <kind>', 'which keys').choices(['x509', 'jwt', 'both']).default('both'))
    .option('--json', 'print JSON')
    .action(async (opts: SocketOptions & { kind: 'x509' | 'jwt' | 'both' }) => {
      const keys = await withAdmin(env, opts, (c) => c.rotateCa(opts.kind));
      if (opts.json) return json(io, keys);
      io.stdout(table(KEY_HEADER, keyRows(keys)));
    });
  common(ca.command('taint'))
    .description('mark a signing key as compromised: it is rotated away and leaves the bundle')
    .argument('<key-id>', 'the key ID (see ca status)')
    .action(async (id: string, opts: SocketOptions) => {
      await withAdmin(env, opts, (c) => c.taintKey(id));
      io.stdout(`tainted key ${id}\n`);
    });

  async function currentBundle(e: NodeJS.ProcessEnv, opts: SocketOptions): Promise<SpiffeBundle> {
    const st = await withAdmin(e, opts, (c) => c.caStatus());
    if (!st.bundle) throw new SvidkitError('ERR_ADMIN_FAILED', 'admin: the CA returned no bundle');
    return SpiffeBundle.parse(TrustDomain.parse(st.bundle.trustDomain), st.bundle.spiffeBundleJson);
  }
}
