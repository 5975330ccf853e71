/** Conversions from the CA's records to its wire messages, shared by the Node and Admin services. */
import type { Bundle } from '../generated/svidkit/ca/v1/Bundle.js';
import type { RegistrationEntry as EntryMessage } from '../generated/svidkit/ca/v1/RegistrationEntry.js';
import type { RegistrationEntry } from '../store/index.js';
import type { CaContext } from './context.js';

/** Whole seconds since the epoch, the unit of every time field in svidkit.ca.v1. */
export function unixSeconds(d: Date): number {
  return Math.floor(d.getTime() / 1000);
}

/** The current published bundle as a Bundle message. */
export function bundleMessage(ctx: CaContext): Bundle {
  const b = ctx.keys.bundle();
  return { trustDomain: b.trustDomain.name, spiffeBundleJson: JSON.stringify(b.toJson()), sequence: b.sequence ?? 0 };
}

/** A stored entry as a RegistrationEntry message. */
export function entryMessage(e: RegistrationEntry): EntryMessage {
  return {
    id: e.id,
    spiffeId: e.spiffeId,
    parentId: e.parentId,
    x509SvidTtlSeconds: e.x509SvidTtlSeconds,
    jwtSvidTtlSeconds: e.jwtSvidTtlSeconds,
    dnsNames: e.dnsNames,
    createdAt: unixSeconds(e.createdAt),
    selectors: e.selectors,
  };
}
