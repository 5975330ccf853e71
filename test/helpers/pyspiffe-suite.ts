/**
 * The py-spiffe checks every Workload API server must pass, declared once and run against each server
 * (a SPIRE agent, svidkit-agent): X.509-SVID and bundle, a JWT-SVID fetched through
 * SPIFFE_ENDPOINT_SOCKET and validated through the server, and a token refused for another audience.
 */
import { strict as assert } from 'node:assert';
import { runClient } from './peer-process.js';
import { peer, requirePeers } from './peers.js';

/** What the checks need from the suite that runs them, read when each test runs. */
export interface PySpiffeTarget {
  /** The server's `unix://` address. */
  endpoint(): string;
  /** The SPIFFE ID the server gives this process (its default SVID). */
  workloadId(): string;
  /** The audience of the JWT-SVID the checks fetch. */
  readonly audience: string;
  /** Whether the server serves this process exactly one SVID, with a chain of one certificate. */
  readonly oneSvid: boolean;
}

/** Declares the py-spiffe describe block (skipped with a reason where py-spiffe is not installed). */
export function describePySpiffe(title: string, target: PySpiffeTarget): void {
  const pySpiffe = peer('py-spiffe');
  describe(`${pySpiffe.label}${title}`, () => {
    let python: string;
    let client: string;
    before(function () {
      requirePeers(this, 'py-spiffe');
      python = pySpiffe.found ? pySpiffe.path : 'python3';
      client = pySpiffe.found ? pySpiffe.extra['client']! : '';
    });

    it('fetches the X.509-SVID and its bundle; the chain verifies', async () => {
      const r = await runClient(python, [client, 'x509', '--socket', target.endpoint()]);
      assert.equal(r.status, 0, r.output);
      const x = r.lines[0]!;
      assert.equal(x['spiffe_id'], target.workloadId());
      if (target.oneSvid) {
        assert.deepEqual(x['svids'], [target.workloadId()]);
        assert.equal(x['chain_length'], 1);
      } else {
        assert.ok((x['svids'] as string[]).includes(target.workloadId()), r.output);
      }
      assert.ok((x['bundle_size'] as number) >= 1, r.output);
      assert.equal(x['verified'], true, r.output);
    });

    it('fetches a JWT-SVID (signature checked with the JWT bundle) and validates it through the server', async () => {
      // This one finds the server through SPIFFE_ENDPOINT_SOCKET, as a Python service usually does.
      const fetched = await runClient(python, [client, 'jwt', '--audience', target.audience], {
        ...process.env,
        SPIFFE_ENDPOINT_SOCKET: target.endpoint(),
      });
      assert.equal(fetched.status, 0, fetched.output);
      const jwt = fetched.lines[0]!;
      assert.equal(jwt['spiffe_id'], target.workloadId());
      assert.deepEqual(jwt['audience'], [target.audience]);
      assert.equal(jwt['verified'], true, fetched.output);
      const token = jwt['token'] as string;
      const validate = (audience: string) =>
        runClient(python, [
          client,
          'validate',
          '--socket',
          target.endpoint(),
          '--audience',
          audience,
          '--token',
          token,
        ]);

      const valid = await validate(target.audience);
      assert.equal(valid.status, 0, valid.output);
      assert.equal(valid.lines[0]!['spiffe_id'], target.workloadId());
      const other = await validate('spiffe://example.org/someone-else');
      assert.equal(other.status, 1, other.output);
      assert.equal(other.lines[0]!['code'], 'INVALID_ARGUMENT', other.output);
    });
  });
}
