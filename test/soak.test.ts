import { strict as assert } from 'node:assert';
import { soak } from '../bench/soak.js';

// The CI version of `npm run soak` (which holds the connections for 5 minutes): same load, 30 seconds.
describe('soak: 1,000 concurrent mTLS connections through the library across SVID rotations (30 s)', function () {
  this.timeout(120_000);

  it('fails no request or handshake, and holds descriptors steady', async () => {
    const lines: string[] = [];
    const r = await soak({ connections: 1000, durationMs: 30_000, rotateEveryMs: 10_000, log: (l) => lines.push(l) });
    const why = `${r.firstFailures.join('\n')}\n${lines.join('\n')}`;
    assert.equal(r.failedHandshakes, 0, why);
    assert.equal(r.failedRequests, 0, why);
    assert.ok(r.requests > 10_000, why);
    assert.ok(r.rotations >= 2, why);
    // New handshakes after each rotation saw that rotation's server certificate.
    for (let g = 1; g < r.rotations; g++) assert.ok((r.handshakesPerGeneration[g] ?? 0) > 0, `generation ${g}: ${why}`);
    // Descriptors: each of the 1,000 loops holds at most one connection (a client and a server socket)
    // at any time, so every sample stays under two per loop above the start, however many
    // handshakes a loaded machine leaves in flight (a leak per handshake or rotation would pass it
    // within seconds); and they are back to the start once the connections are closed.
    assert.ok(r.samples.length >= 3, why);
    const fds = r.samples.map((s) => s.fds);
    if (r.fdsBefore >= 0) {
      const bound = r.fdsBefore + 2 * 1000 + 40;
      assert.ok(Math.max(...fds) <= bound, `descriptors over ${bound}: ${fds.join(' ')}`);
    }
    const full = r.samples.filter((s) => s.open >= 900);
    assert.ok(full.length >= 1, why);
    if (r.fdsBefore >= 0) assert.ok(r.fdsAfter <= r.fdsBefore + 5, `fds ${r.fdsBefore} before, ${r.fdsAfter} after`);
    process.stdout.write(
      `      ${r.requests} requests, ${r.handshakes} handshakes, rss ${full[0]!.rssMiB} -> ${full.at(-1)!.rssMiB} MiB, ` +
        `heap ${full[0]!.heapMiB} -> ${full.at(-1)!.heapMiB} MiB, fds ${fds.join(' ')}\n`,
    );
  });
});
