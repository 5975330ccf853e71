/**
 * SPIFFE ID templates: what a template may say, which IDs a caller's selectors fill it into, and which
 * IDs the CA accepts as named by it.
 */
import { strict as assert } from 'node:assert';
import { SpiffeIdTemplate } from '../lib/ca-api/index.js';
import { isSvidkitError } from '../lib/errors/index.js';
import { SpiffeId, TrustDomain } from '../lib/spiffeid/index.js';

const td = TrustDomain.parse('example.org');
const NS_SA = 'spiffe://{{trust_domain}}/ns/{{k8s:ns}}/sa/{{k8s:sa}}';

function refusedFor(text: unknown): string {
  try {
    SpiffeIdTemplate.parse(text, td);
  } catch (err) {
    assert.ok(isSvidkitError(err, 'ERR_TEMPLATE_INVALID'), String(err));
    return String(err.detail['reason']);
  }
  assert.fail(`accepted ${String(text)}`);
}

describe('ca-api: SPIFFE ID templates', () => {
  it('fills the namespace and service account of a pod', () => {
    const t = SpiffeIdTemplate.parse(NS_SA, td);
    assert.deepEqual(t.keys, ['k8s:ns', 'k8s:sa']);
    const id = t.fill(['k8s:ns:shop', 'k8s:pod-label:app:web', 'k8s:sa:web', 'unix:uid:1000']);
    assert.equal(id?.toString(), 'spiffe://example.org/ns/shop/sa/web');
    assert.ok(t.matches(id!));
  });

  it('gives no ID to a caller missing a key, having it twice, or with a value that is not one segment', () => {
    const t = SpiffeIdTemplate.parse(NS_SA, td);
    assert.equal(t.fill(['k8s:ns:shop']), undefined);
    assert.equal(t.fill(['k8s:ns:a', 'k8s:ns:b', 'k8s:sa:web']), undefined);
    for (const bad of ['..', '.', 'a/b', 'a b', '']) {
      assert.equal(t.fill([`k8s:ns:${bad}`, 'k8s:sa:web']), undefined, bad);
    }
  });

  it('accepts only IDs the template can name', () => {
    const t = SpiffeIdTemplate.parse(NS_SA, td);
    for (const ok of ['spiffe://example.org/ns/a/sa/b', 'spiffe://example.org/ns/a.b-c_d/sa/x']) {
      assert.ok(t.matches(SpiffeId.parse(ok)), ok);
    }
    for (const bad of [
      'spiffe://example.org/ns/a/b/sa/c',
      'spiffe://example.org/ns/a/sa/b/c',
      'spiffe://other.org/ns/a/sa/b',
      'spiffe://example.org/ns/a/sa',
      'spiffe://example.org/nsx/a/sa/b',
    ]) {
      assert.equal(t.matches(SpiffeId.parse(bad)), false, bad);
    }
  });

  it('treats literal dots of the trust domain literally', () => {
    const t = SpiffeIdTemplate.parse('spiffe://{{trust_domain}}/w/{{k8s:sa}}', td);
    assert.equal(t.matches(SpiffeId.parse('spiffe://examplexorg/w/a')), false);
    assert.ok(t.matches(SpiffeId.parse('spiffe://example.org/w/a')));
  });

  it('refuses templates that could never be right, with a reason', () => {
    assert.equal(refusedFor(''), 'empty');
    assert.equal(refusedFor(42), 'empty');
    assert.equal(refusedFor(`spiffe://example.org/${'a'.repeat(1100)}/{{k8s:sa}}`), 'too_long');
    assert.equal(refusedFor('spiffe://example.org/ns'), 'no_placeholder');
    assert.equal(refusedFor('spiffe://example.org/{{k8s:pod-label}}'), 'unknown_placeholder');
    assert.equal(refusedFor('spiffe://example.org/{{nope}}'), 'unknown_placeholder');
    assert.equal(refusedFor('spiffe://other.org/w/{{k8s:sa}}'), 'foreign_trust_domain');
    assert.equal(refusedFor('spiffe://example.org/svidkit/{{k8s:sa}}'), 'reserved');
    // A namespace called "svidkit" would land under the reserved path.
    assert.equal(refusedFor('spiffe://example.org/{{k8s:ns}}/x'), 'reserved');
    assert.equal(refusedFor('spiffe://example.org/w/{k8s:sa}'), 'bad_brace');
    assert.equal(refusedFor('spiffe://example.org/w/{{k8s:sa}}}'), 'bad_brace');
    assert.equal(refusedFor('x/{{k8s:sa}}'), 'not_an_id');
    const many = Array.from({ length: 9 }, () => '{{k8s:sa}}').join('/');
    assert.equal(refusedFor(`spiffe://example.org/w/${many}`), 'too_many');
  });
});
