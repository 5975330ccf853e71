import { strict as assert } from 'node:assert';
import { verify } from '../lib/x509svid/index.js';
import { T0, TestCa } from './helpers/ca.js';

describe('smoke', () => {
  it('issues and verifies', () => {
    const ca = TestCa.root();
    const svid = ca.svid('/workload');
    const r = verify(svid.certificates, ca.bundle(), { at: T0 });
    assert.equal(r.id.toString(), 'spiffe://example.org/workload');
    const inter = ca.intermediate();
    const s2 = inter.svid('/w2', { keyType: 'rsa-2048' });
    const r2 = verify(s2.certificates, ca.bundle(), { at: T0 });
    assert.equal(r2.chain.length, 3);
  });
});
