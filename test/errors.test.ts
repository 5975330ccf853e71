/**
 * SvidkitError carries what callers once parsed out of messages: the module that raised it, the
 * message without that module's prefix (to quote inside another module's message), and a detail
 * record; and x509svid's list of leaf-rule violations, which idFromLeaf and doctor both use.
 */
import { strict as assert } from 'node:assert';
import { loadAgentConfig } from '../lib/agent/config.js';
import { SvidkitError } from '../lib/errors/index.js';
import { SpiffeId } from '../lib/spiffeid/index.js';
import { KeyUsageBit } from '../lib/x509/index.js';
import { idFromLeaf, leafRuleViolations } from '../lib/x509svid/index.js';
import { checkError } from './helpers/assert.js';
import { TestCa } from './helpers/ca.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('errors carry data', () => {
  it('a SvidkitError knows its module and its message without the prefix', () => {
    const e = new SvidkitError('ERR_SPIFFEID_SCHEME', 'spiffeid: scheme must be "spiffe"');
    assert.equal(e.module, 'spiffeid');
    assert.equal(e.plainMessage, 'scheme must be "spiffe"');
    assert.deepEqual(e.detail, {});
    assert.equal(Object.hasOwn(e, 'cause'), false);
    const bare = new SvidkitError('ERR_INTERNAL', 'no module here');
    assert.equal(bare.module, undefined);
    assert.equal(bare.plainMessage, 'no module here');
  });

  it('keeps a detail record, frozen, and a cause only when one is given', () => {
    const cause = new Error('inner');
    const e = new SvidkitError('ERR_CONFIG', 'config: ca.address: is required', {
      cause,
      detail: { key: 'ca.address' },
    });
    assert.equal(e.cause, cause);
    assert.deepEqual(e.detail, { key: 'ca.address' });
    assert.ok(Object.isFrozen(e.detail));
  });

  it('a real library error quoted by another module keeps one prefix: SPIFFE ID errors inside x509svid', () => {
    const leaf = TestCa.root().leaf('/w', { uris: ['spiffe://example.org/a%20b'] }).chain[0]!;
    const err = checkError(
      (() => {
        try {
          idFromLeaf(leaf);
        } catch (e) {
          return e;
        }
        return undefined;
      })(),
      'ERR_X509SVID_INVALID_ID',
    );
    assert.equal(err.module, 'x509svid');
    assert.ok(err.message.startsWith('x509svid: leaf URI SAN is not a valid SPIFFE ID: '), err.message);
    assert.ok(!err.message.includes('spiffeid: '), err.message);
    assert.ok(SpiffeId.tryParse('spiffe://example.org/w'));
  });

  it('an agent configuration error from a file names the file in its message and in its detail', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svidkit-errors-'));
    try {
      const file = join(dir, 'agent.yaml');
      writeFileSync(file, 'trust_domain: example.org\n');
      let caught: unknown;
      try {
        await loadAgentConfig({ configFile: file, env: {} });
      } catch (e) {
        caught = e;
      }
      const err = checkError(caught, 'ERR_CONFIG');
      assert.ok(err.message.startsWith(`config: ${file}: `), err.message);
      assert.ok(!err.message.includes('config: config:'), err.message);
      assert.equal(err.detail['file'], file);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('x509svid leaf-rule violations', () => {
  const ca = TestCa.root();
  const cases = [
    { name: 'a valid leaf', opts: {}, rules: [] },
    { name: 'a CA leaf', opts: { ca: true }, rules: ['leaf-is-ca'] },
    { name: 'no keyUsage', opts: { keyUsage: 0 }, rules: ['no-key-usage'] },
    { name: 'a non-critical keyUsage', opts: { keyUsageCritical: false }, rules: ['key-usage-not-critical'] },
    {
      name: 'keyEncipherment only',
      opts: { keyType: 'rsa-2048' as const, keyUsage: KeyUsageBit.keyEncipherment },
      rules: ['no-digital-signature'],
    },
    {
      name: 'digitalSignature and keyCertSign',
      opts: { keyUsage: KeyUsageBit.digitalSignature | KeyUsageBit.keyCertSign },
      rules: ['signing-key-usage'],
    },
    { name: 'serverAuth only', opts: { eku: ['1.3.6.1.5.5.7.3.1'] }, rules: ['ext-key-usage'] },
    {
      name: 'a CA leaf without keyUsage and with serverAuth only',
      opts: { ca: true, keyUsage: 0, eku: ['1.3.6.1.5.5.7.3.1'] },
      rules: ['leaf-is-ca', 'no-key-usage', 'ext-key-usage'],
    },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.rules.join(', ') || 'none'}`, () => {
      const leaf = ca.leaf('/w', c.opts).chain[0]!;
      const found = leafRuleViolations(leaf);
      assert.deepEqual(
        found.map((v) => v.rule),
        c.rules,
      );
      // idFromLeaf refuses with the first violation, or accepts.
      if (found.length === 0) assert.equal(idFromLeaf(leaf).toString(), 'spiffe://example.org/w');
      else
        assert.throws(
          () => idFromLeaf(leaf),
          (e: SvidkitError) => e.code === found[0]!.code && e.plainMessage === found[0]!.message,
        );
    });
  }
});
