/**
 * Workload API callers identified by the kernel: real Unix sockets, real client processes (node, and
 * as root node under setpriv as another uid), the real /proc, and a crafted proc root for what a real
 * process cannot be made to show (a pid reused, a zombie, a malformed or oversized file).
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server, type Socket, connect as netConnect } from 'node:net';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CallerAttestor, peerCredentials, PeerCredentials } from '../lib/agent/caller/index.js';
import { type ErrorCode, SvidkitError } from '../lib/errors/index.js';
import { checkError, rejectsCode } from './helpers/assert.js';

const isRoot = process.getuid?.() === 0;
const hasSetpriv = (() => {
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const [major, minor] = release().split('.').map(Number);
/** SO_PEERPIDFD arrived in Linux 6.5. */
const kernelHasPeerPidfd = major! > 6 || (major === 6 && minor! >= 5);

function caller(code: ErrorCode): { code: ErrorCode; prefix: string } {
  return { code, prefix: 'caller: ' };
}

async function rejectsCaller(p: Promise<unknown>, code: ErrorCode, message?: RegExp) {
  return rejectsCode(p, code, { prefix: caller(code).prefix, ...(message ? { message } : {}) });
}

function throwsCaller(fn: () => unknown, code: ErrorCode, message?: RegExp) {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  return checkError(caught, code, { prefix: 'caller: ', ...(message ? { message } : {}) });
}

/** A Unix socket server that hands each accepted connection over paused, as the agent will. */
class TestServer {
  readonly path: string;
  readonly #server: Server;
  readonly #waiting: Array<(s: Socket) => void> = [];
  readonly #ready: Socket[] = [];
  readonly sockets: Socket[] = [];

  constructor(dir: string) {
    this.path = join(dir, 'api.sock');
    this.#server = createServer({ pauseOnConnect: true }, (s) => {
      this.sockets.push(s);
      s.on('error', () => undefined);
      const w = this.#waiting.shift();
      if (w) w(s);
      else this.#ready.push(s);
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) =>
      this.#server.listen(this.path, () => {
        // Any local user may connect: access is decided by attestation, not file modes.
        chmodSync(this.path, 0o777);
        resolve();
      }),
    );
  }

  /** The next accepted connection. */
  accept(): Promise<Socket> {
    const s = this.#ready.shift();
    if (s) return Promise.resolve(s);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

/** A child process and its stdout lines, waited for by content (never by time). */
class Client {
  readonly child: ChildProcess;
  #out = '';
  readonly #listeners: Array<() => void> = [];
  readonly exited: Promise<number | null>;

  constructor(command: string, args: string[]) {
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child.stdout!.on('data', (d: Buffer) => {
      this.#out += d.toString();
      for (const l of [...this.#listeners]) l();
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** Resolves with the first complete line starting with `prefix`. */
  line(prefix: string): Promise<string> {
    return new Promise((resolve) => {
      const check = () => {
        // Only whole lines: a line can arrive in two chunks.
        const found = this.#out
          .split('\n')
          .slice(0, -1)
          .find((l) => l.startsWith(prefix));
        if (found === undefined) return false;
        this.#listeners.splice(this.#listeners.indexOf(check), 1);
        resolve(found);
        return true;
      };
      this.#listeners.push(check);
      check();
    });
  }

  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  get pid(): number {
    return this.child.pid!;
  }

  stop(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** Connects, sends "hello" (which the paused server must not consume), and stays until told to exit. */
const CONNECTOR = `
const s = require('net').connect(process.argv[1], () => {
  s.write('hello');
  console.log('connected ' + process.pid);
});
s.on('error', (e) => { console.log('error ' + e.message); process.exit(2); });
process.stdin.on('data', (d) => { if (String(d).includes('exit')) process.exit(0); });
`;

/**
 * The pid-reuse race, forged: connects, hands the connection to a child (another uid when root)
 * through an inherited descriptor, and exits on "handover", leaving the child holding it.
 */
const FORKER = `
const { spawn } = require('child_process');
const s = require('net').connect(process.argv[1], () => console.log('connected ' + process.pid));
s.on('error', () => process.exit(2));
const holder = "const h = new (require('net').Socket)({ fd: 3 }); h.on('error', () => process.exit(0)); h.on('close', () => process.exit(0)); h.resume(); console.log('holding ' + process.pid);";
process.stdin.on('data', (d) => {
  if (!String(d).includes('handover')) return;
  const asOther = process.argv[2] === 'other';
  const cmd = asOther ? 'setpriv' : process.execPath;
  const args = asOther
    ? ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', holder]
    : ['-e', holder];
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit', s], detached: true });
  child.stdout.on('data', (line) => {
    process.stdout.write(line);
    if (String(line).startsWith('holding')) { child.stdout.destroy(); child.unref(); s.destroy(); process.exit(0); }
  });
});
`;

function idList(args: string[]): number[] {
  return execFileSync('id', args, { encoding: 'utf8' }).trim().split(/\s+/).map(Number);
}

function idName(args: string[]): string {
  return execFileSync('id', args, { encoding: 'utf8' }).trim();
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Waits for a condition by polling it; the limit only guards against a hang, it is not a performance check. */
async function until(what: string, cond: () => boolean, limitMs = 30_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Kills a process by pid if it still runs (only processes these tests started). */
function killPid(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

describe('agent caller attestation', function () {
  this.timeout(60_000);
  let dir: string;
  let server: TestServer;
  const clients: Client[] = [];
  const strays: number[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'svidkit-caller-'));
    chmodSync(dir, 0o755);
    server = new TestServer(dir);
    await server.listen();
  });

  afterEach(() => {
    for (const c of clients.splice(0)) c.stop();
    for (const pid of strays.splice(0)) killPid(pid);
  });

  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts a connector (as `wrap` says) and returns it with the server side of its connection. */
  async function connectClient(wrap: string[] = []): Promise<{ client: Client; socket: Socket; pid: number }> {
    const [cmd, ...pre] = wrap.length > 0 ? wrap : [process.execPath];
    const args =
      wrap.length > 0 ? [...pre, process.execPath, '-e', CONNECTOR, server.path] : ['-e', CONNECTOR, server.path];
    const client = new Client(cmd!, args);
    clients.push(client);
    const socket = await server.accept();
    const line = await client.line('connected ');
    return { client, socket, pid: Number(line.split(' ')[1]) };
  }

  describe('peerCredentials', () => {
    it('reads the client process pid, uid and gid from the kernel, without reading the paused socket', async () => {
      const { socket, pid } = await connectClient();
      const creds = peerCredentials(socket);
      try {
        assert.equal(creds.pid, pid);
        assert.equal(creds.uid, idList(['-u'])[0]);
        assert.equal(creds.gid, idList(['-g'])[0]);
        if (kernelHasPeerPidfd) {
          assert.ok(creds.pidfd !== undefined && creds.pidfd >= 0, 'Linux 6.5+ gives a pidfd');
          const fdinfo = readFileSync(`/proc/self/fdinfo/${creds.pidfd}`, 'latin1');
          assert.match(fdinfo, new RegExp(`^Pid:\\s*${pid}$`, 'm'));
        }
        assert.ok(socket.isPaused());
        // The client's first bytes are all still there for whoever resumes the socket next (grpc-js).
        const first = await new Promise<string>((resolve) => {
          socket.once('data', (d: Buffer) => resolve(d.toString()));
          socket.resume();
        });
        assert.equal(first, 'hello');
      } finally {
        creds.close();
        creds.close();
        assert.equal(creds.pidfd, undefined);
      }
    });

    it('can be asked for no pidfd', async () => {
      const { socket, pid } = await connectClient();
      const creds = peerCredentials(socket, { pidfd: false });
      assert.equal(creds.pid, pid);
      assert.equal(creds.pidfd, undefined);
    });

    it('refuses a TCP socket, a closed socket and a socket that never connected', async () => {
      const tcp = createServer({ pauseOnConnect: true });
      await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
      try {
        const accepted = new Promise<Socket>((r) => tcp.once('connection', r));
        const client = netConnect((tcp.address() as { port: number }).port, '127.0.0.1');
        client.on('error', () => undefined);
        const s = await accepted;
        throwsCaller(() => peerCredentials(s), 'ERR_CALLER_CREDENTIALS', /not a Unix socket/);
        s.destroy();
        await new Promise((r) => s.once('close', r));
        throwsCaller(() => peerCredentials(s), 'ERR_CALLER_CREDENTIALS', /no file descriptor/);
        client.destroy();
      } finally {
        await new Promise((r) => tcp.close(r));
      }
      const { Socket: NetSocket } = await import('node:net');
      throwsCaller(() => peerCredentials(new NetSocket()), 'ERR_CALLER_CREDENTIALS', /no file descriptor/);
    });
  });

  describe('attest on the real /proc', () => {
    it('gives the unix selectors of the client: uid, user, gid, group and supplementary groups', async () => {
      const { socket, pid } = await connectClient();
      const creds = peerCredentials(socket);
      try {
        const attestor = new CallerAttestor();
        const got = await attestor.attest(creds);
        const uid = idList(['-u'])[0]!;
        const gid = idList(['-g'])[0]!;
        assert.equal(got.pid, pid);
        assert.equal(got.uid, uid);
        assert.equal(got.gid, gid);
        const procStart = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]!.split(' ')[19];
        assert.equal(String(got.startTime), procStart);
        assert.deepEqual(new Set([gid, ...got.groups]), new Set(idList(['-G'])));
        const s = new Set(got.selectors);
        assert.ok(s.has(`unix:uid:${uid}`));
        assert.ok(s.has(`unix:gid:${gid}`));
        assert.ok(s.has(`unix:user:${idName(['-un'])}`), got.selectors.join(' '));
        assert.ok(s.has(`unix:group:${idName(['-gn'])}`), got.selectors.join(' '));
        for (const g of got.groups) assert.ok(s.has(`unix:supplementary_gid:${g}`));
        assert.ok(!got.selectors.some((x) => x.startsWith('unix:path:') || x.startsWith('unix:sha256:')));
        await attestor.recheck(got);
      } finally {
        creds.close();
      }
    });

    it('adds the selectors of a further attestor, which reads the caller through the same descriptor', async () => {
      const { socket, pid } = await connectClient();
      const creds = peerCredentials(socket);
      try {
        const seen: number[] = [];
        const attestor = new CallerAttestor({
          workloadAttestors: [
            {
              name: 'k8s',
              attest: async (proc) => {
                seen.push(proc.pid);
                // The caller's own cgroup file, read through the attestation's descriptor.
                const first = proc.read('cgroup', 65536).split('\n')[0]!;
                return first === '' ? [] : ['k8s:pod-uid:from-cgroup'];
              },
            },
          ],
        });
        const got = await attestor.attest(creds);
        assert.deepEqual(seen, [pid]);
        assert.ok(got.selectors.includes('k8s:pod-uid:from-cgroup'), got.selectors.join(' '));
        assert.ok(got.selectors.includes(`unix:uid:${idList(['-u'])[0]!}`));
      } finally {
        creds.close();
      }
    });

    it('refuses a caller when a further attestor fails or returns a selector of another type', async () => {
      for (const [name, attest, code] of [
        ['k8s', async () => ['unix:uid:0'], 'ERR_CALLER_PROC'],
        [
          'k8s',
          async () => {
            throw new SvidkitError('ERR_CALLER_PROC', 'caller: kubelet unreachable');
          },
          'ERR_CALLER_PROC',
        ],
      ] as const) {
        const { socket } = await connectClient();
        const creds = peerCredentials(socket);
        try {
          const attestor = new CallerAttestor({ workloadAttestors: [{ name, attest }] });
          await rejectsCode(attestor.attest(creds), code);
        } finally {
          creds.close();
        }
      }
    });

    it('with discoverPath: unix:path and unix:sha256 of the binary, hashed once per binary version', async () => {
      const attestor = new CallerAttestor({ discoverPath: true });
      const expectedPath = realpathSync(process.execPath);
      const expectedHash = sha256File(expectedPath);
      for (let i = 0; i < 2; i++) {
        const { socket } = await connectClient();
        const creds = peerCredentials(socket);
        try {
          const got = await attestor.attest(creds);
          assert.equal(got.path, expectedPath);
          assert.equal(got.sha256, expectedHash);
          assert.ok(got.selectors.includes(`unix:path:${expectedPath}`));
          assert.ok(got.selectors.includes(`unix:sha256:${expectedHash}`));
          assert.deepEqual(got.notes, []);
          await attestor.recheck(got);
        } finally {
          creds.close();
        }
      }
      assert.equal(attestor.binariesHashed, 1);
    });

    it('callers of the same binary attested at once share one hash', async () => {
      const attestor = new CallerAttestor({ discoverPath: true });
      const a = await connectClient();
      const b = await connectClient();
      const ca = peerCredentials(a.socket);
      const cb = peerCredentials(b.socket);
      try {
        const [ga, gb] = await Promise.all([attestor.attest(ca), attestor.attest(cb)]);
        assert.equal(ga.sha256, gb.sha256);
        assert.ok(ga.sha256 !== undefined);
        assert.equal(attestor.binariesHashed, 1);
      } finally {
        ca.close();
        cb.close();
      }
    });

    it('with discoverPath, recheck refuses a caller that exec()d another binary keeping pid, start time and uid', async function () {
      const python = (() => {
        try {
          return execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
        } catch {
          return undefined;
        }
      })();
      const sleep = ['/bin/sleep', '/usr/bin/sleep'].find((p) => existsSync(p));
      if (python === undefined || sleep === undefined) this.skip(); // needs python3 (to exec holding the socket) and sleep
      const script = [
        'import os, socket, sys',
        's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
        's.connect(sys.argv[1])',
        "print('connected', os.getpid(), flush=True)",
        'sys.stdin.readline()',
        's.set_inheritable(True)',
        "os.execv(sys.argv[2], [sys.argv[2], '3600'])",
      ].join('\n');
      const client = new Client(python!, ['-c', script, server.path, sleep!]);
      clients.push(client);
      const socket = await server.accept();
      const pid = Number((await client.line('connected ')).split(' ')[1]);
      const creds = peerCredentials(socket);
      try {
        const withPath = new CallerAttestor({ discoverPath: true });
        const without = new CallerAttestor();
        const a = await withPath.attest(creds);
        const b = await without.attest(creds);
        assert.equal(a.path, readlinkSync(`/proc/${pid}/exe`));
        const before = readlinkSync(`/proc/${pid}/exe`);
        client.send('exec');
        await until('the exec', () => readlinkSync(`/proc/${pid}/exe`) !== before);
        const err = await rejectsCaller(withPath.recheck(a), 'ERR_CALLER_CHANGED', /runs another executable/);
        assert.equal(err.detail['reason'], 'exe');
        // Without path discovery nothing the selectors used has changed: the same process, start time and ids.
        await without.recheck(b);
      } finally {
        creds.close();
      }
    });

    it('a binary over the size cap gets unix:path but no unix:sha256, and says why', async () => {
      const attestor = new CallerAttestor({ discoverPath: true, maxBinarySize: 4096 });
      const { socket } = await connectClient();
      const creds = peerCredentials(socket);
      try {
        const got = await attestor.attest(creds);
        assert.equal(got.sha256, undefined);
        assert.ok(got.selectors.includes(`unix:path:${realpathSync(process.execPath)}`));
        assert.ok(!got.selectors.some((x) => x.startsWith('unix:sha256:')));
        assert.match(got.notes.join('\n'), /no unix:sha256 selector: its binary is larger than the 4096-byte cap/);
        assert.equal(attestor.binariesHashed, 0);
      } finally {
        creds.close();
      }
    });

    it('an attestation cancelled while hashing is refused, and the next one hashes afresh', async () => {
      const attestor = new CallerAttestor({ discoverPath: true });
      const { socket } = await connectClient();
      const creds = peerCredentials(socket);
      try {
        const abort = new AbortController();
        const pending = attestor.attest(creds, { signal: abort.signal });
        abort.abort();
        const err = await rejectsCaller(pending, 'ERR_CALLER_PROC', /was cancelled/);
        assert.equal(err.detail['reason'], 'cancelled');
        const got = await attestor.attest(creds);
        assert.equal(got.sha256, sha256File(realpathSync(process.execPath)));
        assert.equal(attestor.binariesHashed, 1);
      } finally {
        creds.close();
      }
    });

    it('a caller that exited before attestation gets ERR_CALLER_GONE, with and without a pidfd', async () => {
      for (const pidfd of [true, false]) {
        const { client, socket } = await connectClient();
        const creds = peerCredentials(socket, { pidfd });
        try {
          client.send('exit');
          await client.exited;
          await rejectsCaller(new CallerAttestor().attest(creds), 'ERR_CALLER_GONE');
        } finally {
          creds.close();
        }
      }
    });

    it('as root: a client running as another uid gets that uid selectors', async function () {
      if (!isRoot || !hasSetpriv) this.skip(); // needs root to run the client as another uid
      const { socket, pid } = await connectClient(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']);
      const creds = peerCredentials(socket);
      try {
        assert.equal(creds.pid, pid);
        assert.equal(creds.uid, 65534);
        assert.equal(creds.gid, 65534);
        const got = await new CallerAttestor().attest(creds);
        const user = idName(['-nu', '65534']);
        const group = execFileSync('getent', ['group', '65534'], { encoding: 'utf8' }).split(':')[0]!;
        assert.deepEqual(got.selectors, [
          'unix:uid:65534',
          `unix:user:${user}`,
          'unix:gid:65534',
          `unix:group:${group}`,
        ]);
        assert.deepEqual(got.groups, []);
      } finally {
        creds.close();
      }
    });
  });

  describe('the pid-reuse race: a client hands its connection to a child and exits', () => {
    const other = isRoot && hasSetpriv;

    async function forker(): Promise<{ client: Client; socket: Socket; pid: number }> {
      const client = new Client(process.execPath, ['-e', FORKER, server.path, other ? 'other' : 'same']);
      clients.push(client);
      const socket = await server.accept();
      const line = await client.line('connected ');
      return { client, socket, pid: Number(line.split(' ')[1]) };
    }

    async function handOver(client: Client): Promise<void> {
      client.send('handover');
      const holding = await client.line('holding ');
      strays.push(Number(holding.split(' ')[1]));
      await client.exited;
    }

    for (const pidfd of [true, false]) {
      it(`is refused at attestation when the parent is already gone (${pidfd ? 'pidfd' : 'start time'})`, async () => {
        const { client, socket, pid } = await forker();
        const creds = peerCredentials(socket, { pidfd });
        try {
          assert.equal(creds.pid, pid);
          await handOver(client);
          await rejectsCaller(new CallerAttestor().attest(creds), 'ERR_CALLER_GONE');
        } finally {
          creds.close();
        }
      });

      it(`is refused at the recheck when the parent leaves after attestation (${pidfd ? 'pidfd' : 'start time'})`, async () => {
        const { client, socket, pid } = await forker();
        const creds = peerCredentials(socket, { pidfd });
        try {
          const attestor = new CallerAttestor();
          const got = await attestor.attest(creds);
          assert.equal(got.pid, pid);
          assert.equal(got.uid, process.getuid!());
          await attestor.recheck(got);
          await handOver(client);
          const err = await rejectsCaller(attestor.recheck(got), 'ERR_CALLER_CHANGED', /has exited/);
          assert.equal(err.detail['reason'], 'exited');
        } finally {
          creds.close();
        }
      });
    }
  });

  describe('attest on a crafted proc root', () => {
    let root: string;
    let passwd: string;
    let group: string;
    const PID = 4242;
    const START = 1000;

    const status = (o: { uid?: string; gid?: string; groups?: string; tgid?: number } = {}) =>
      [
        'Name:\tworker',
        'State:\tS (sleeping)',
        `Tgid:\t${o.tgid ?? PID}`,
        `Pid:\t${PID}`,
        `Uid:\t${o.uid ?? '1000\t1000\t1000\t1000'}`,
        `Gid:\t${o.gid ?? '1000\t1000\t1000\t1000'}`,
        'FDSize:\t64',
        `Groups:\t${o.groups ?? '27 100 27'}`,
        '',
      ].join('\n');
    // A command name holding spaces and ") " the way a hostile process can name itself.
    const stat = (o: { start?: number; state?: string } = {}) =>
      `${PID} (a) b ) S 1 ) ${o.state ?? 'S'} 1 ${PID} ${PID} 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 ${o.start ?? START} 1000 100 ` +
      '18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n';

    function writeProc(files: { status?: string; stat?: string }): void {
      const p = join(root, String(PID));
      rmSync(p, { recursive: true, force: true });
      mkdirSync(p, { recursive: true });
      writeFileSync(join(p, 'status'), files.status ?? status());
      writeFileSync(join(p, 'stat'), files.stat ?? stat());
    }

    const creds = (o: { uid?: number; gid?: number; readAt?: number; pid?: number } = {}) =>
      new PeerCredentials(o.pid ?? PID, o.uid ?? 1000, o.gid ?? 1000, o.readAt ?? START + 50, undefined);

    const attestor = (extra: Record<string, unknown> = {}) =>
      new CallerAttestor({ procRoot: root, passwdFile: passwd, groupFile: group, ...extra });

    beforeEach(() => {
      root = mkdtempSync(join(tmpdir(), 'svidkit-proc-'));
      passwd = join(root, 'passwd');
      group = join(root, 'group');
      writeFileSync(passwd, '# comment\n+nis\nworker:x:1000:1000::/home/w:/bin/sh\nshadow:x:1000:1000::/:/bin/sh\n');
      writeFileSync(group, 'workers:x:1000:\nsudo:x:27:worker\n');
      writeProc({});
    });
    afterEach(() => rmSync(root, { recursive: true, force: true }));

    it('reads the start time after the last ")" of the name and the effective ids, names from the files', async () => {
      const got = await attestor().attest(creds());
      assert.equal(got.startTime, START);
      assert.deepEqual(got.groups, [27, 100]);
      assert.deepEqual(got.selectors, [
        'unix:uid:1000',
        'unix:user:worker',
        'unix:gid:1000',
        'unix:group:workers',
        'unix:supplementary_gid:27',
        'unix:supplementary_gid:100',
        'unix:supplementary_group:sudo',
      ]);
      assert.deepEqual(got.notes, []);
    });

    it('uses the effective ids: the second field of Uid: and Gid:', async () => {
      writeProc({ status: status({ uid: '0\t1000\t0\t1000', gid: '0\t1000\t0\t1000' }) });
      const got = await attestor().attest(creds());
      assert.equal(got.uid, 1000);
      assert.equal(got.gid, 1000);
    });

    it('an unreadable or oversized passwd file gives no unix:user selector and a note', async () => {
      writeFileSync(passwd, `worker:x:1000:1000::/:/bin/sh\n${'#'.repeat(2048)}\n`);
      const got = await attestor({ maxNamesFile: 1024 }).attest(creds());
      assert.ok(!got.selectors.some((s) => s.startsWith('unix:user:')));
      assert.ok(got.selectors.includes('unix:uid:1000'));
      assert.ok(got.selectors.includes('unix:group:workers'));
      assert.match(got.notes.join('\n'), /no unix:user selector: .*passwd is larger than 1024 bytes/);
      rmSync(passwd);
      const again = await attestor().attest(creds());
      assert.ok(!again.selectors.some((s) => s.startsWith('unix:user:')));
      assert.match(again.notes.join('\n'), /passwd could not be read \(ENOENT\)/);
    });

    it('reads a passwd file again when it changes', async () => {
      const a = attestor();
      assert.ok((await a.attest(creds())).selectors.includes('unix:user:worker'));
      writeFileSync(passwd, 'renamed:x:1000:1000::/:/bin/sh\n');
      assert.ok((await a.attest(creds())).selectors.includes('unix:user:renamed'));
    });

    const refusals: ReadonlyArray<{
      name: string;
      files?: () => { status?: string; stat?: string };
      setup?: () => void;
      creds?: () => PeerCredentials;
      options?: Record<string, unknown>;
      code: ErrorCode;
      message: RegExp;
    }> = [
      {
        name: 'a process that started after the credentials were read (pid reused)',
        files: () => ({ stat: stat({ start: START + 51 }) }),
        code: 'ERR_CALLER_CHANGED',
        message: /started after the connection was made/,
      },
      {
        name: 'an effective uid other than the one the kernel recorded at connect (a set-uid exec)',
        files: () => ({ status: status({ uid: '1000\t0\t0\t0' }) }),
        code: 'ERR_CALLER_CHANGED',
        message: /runs as uid 0 gid 1000 but connected as uid 1000 gid 1000/,
      },
      {
        name: 'an effective gid other than the recorded one',
        files: () => ({ status: status({ gid: '1000\t50\t50\t50' }) }),
        code: 'ERR_CALLER_CHANGED',
        message: /runs as uid 1000 gid 50/,
      },
      {
        name: 'a zombie',
        files: () => ({ stat: stat({ state: 'Z' }) }),
        code: 'ERR_CALLER_GONE',
        message: /has exited/,
      },
      {
        name: 'a pid with no /proc entry',
        creds: () => creds({ pid: PID + 1 }),
        code: 'ERR_CALLER_GONE',
        message: /exited during attestation/,
      },
      {
        name: 'a /proc entry that is a symlink',
        setup: () => symlinkSync(join(root, String(PID)), join(root, String(PID + 2))),
        creds: () => creds({ pid: PID + 2 }),
        code: 'ERR_CALLER_PROC',
        message: /its \/proc directory of pid \d+: (ENOTDIR|ELOOP)/,
      },
      {
        name: 'a stat without a closing parenthesis',
        files: () => ({ stat: `${PID} (x S 1 2 3\n` }),
        code: 'ERR_CALLER_PROC',
        message: /cannot read stat of pid 4242: it is not in the kernel format/,
      },
      {
        name: 'a status without Uid:',
        files: () => ({ status: status().replace(/^Uid:.*\n/m, '') }),
        code: 'ERR_CALLER_PROC',
        message: /status of pid 4242: it is not in the kernel format/,
      },
      {
        name: 'a status with a non-numeric group',
        files: () => ({ status: status({ groups: '27 x' }) }),
        code: 'ERR_CALLER_PROC',
        message: /not in the kernel format/,
      },
      {
        name: 'a status describing another thread group',
        files: () => ({ status: status({ tgid: 7 }) }),
        code: 'ERR_CALLER_PROC',
        message: /describes thread group 7/,
      },
      {
        name: 'more supplementary groups than the limit',
        files: () => ({ status: status({ groups: '1 2 3 4 5' }) }),
        options: { maxGroups: 4 },
        code: 'ERR_CALLER_PROC',
        message: /more than 4 supplementary groups/,
      },
      {
        name: 'a status larger than any the kernel writes',
        files: () => ({ status: status() + 'X'.repeat(70 * 1024) }),
        code: 'ERR_CALLER_PROC',
        message: /status of pid 4242: it is larger than 65536 bytes/,
      },
    ];
    for (const r of refusals) {
      it(`refuses ${r.name}`, async () => {
        if (r.files) writeProc(r.files());
        r.setup?.();
        await rejectsCaller(attestor(r.options).attest(r.creds?.() ?? creds()), r.code, r.message);
      });
    }

    it('recheck refuses a changed start time, changed ids or groups, and a process gone', async () => {
      const a = attestor();
      const cases: Array<[{ status?: string; stat?: string } | 'remove', RegExp, string]> = [
        [{ stat: stat({ start: START + 1 }) }, /start time changed/, 'pid_reused'],
        [{ status: status({ uid: '1000\t1001\t1001\t1001' }) }, /changed its uid, gid or groups/, 'ids'],
        [{ status: status({ groups: '27' }) }, /changed its uid, gid or groups/, 'ids'],
        [{ stat: stat({ state: 'Z' }) }, /has exited/, 'exited'],
        ['remove', /has exited/, 'exited'],
      ];
      for (const [files, message, reason] of cases) {
        writeProc({});
        const got = await a.attest(creds());
        await a.recheck(got);
        if (files === 'remove') rmSync(join(root, String(PID)), { recursive: true });
        else writeProc(files);
        const err = await rejectsCaller(a.recheck(got), 'ERR_CALLER_CHANGED', message);
        assert.equal(err.detail['reason'], reason);
      }
      await assert.rejects(
        new CallerAttestor().recheck({ pid: 1, uid: 0, gid: 0, groups: [], startTime: 0, selectors: [], notes: [] }),
        TypeError,
      );
    });
  });
});
