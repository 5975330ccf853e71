/**
 * Minting X.509-SVIDs through the CA in batches, for file workloads and Workload API entries alike:
 * keys are made here and never leave the node, only CSRs go to the CA, at most BATCH_SIZE per call,
 * and each item's result (an SVID or the reason it failed) goes to that item's own callback, so one
 * refused CSR never holds the others.
 */
import type { KeyObject } from 'node:crypto';
import { generateKeyPair, type KeyType } from '../keys/index.js';
import type { SpiffeId } from '../spiffeid/index.js';
import { Certificate, type CertificateCache } from '../x509/certificate.js';
import { createCsr, X509Svid } from '../x509svid/index.js';
import type { CaClient } from './ca-client.js';

/** CSRs per BatchNewX509Svid call. */
export const BATCH_SIZE = 100;

/** One SVID to mint: for which entry and ID, with which key type, and where the result goes. */
export interface MintJob {
  readonly entryId: string;
  readonly spiffeId: SpiffeId;
  readonly keyType: KeyType;
  readonly done: (svid: X509Svid) => void;
  readonly failed: (reason: string) => void;
}

/**
 * Mints every job, in batches; a CA call that fails as a whole rejects (the caller backs off), while an
 * item the CA refuses or whose chain does not parse goes to that job's `failed`. Intermediates common to
 * many chains are parsed once per exact DER through `intermediates`.
 */
export async function mintX509(
  client: CaClient,
  jobs: readonly MintJob[],
  intermediates: CertificateCache,
  describe: (err: unknown) => string,
): Promise<void> {
  for (let i = 0; i < jobs.length; i += BATCH_SIZE) {
    const chunk = jobs.slice(i, i + BATCH_SIZE);
    const keys: KeyObject[] = [];
    const params = chunk.map((job) => {
      const pair = generateKeyPair(job.keyType);
      keys.push(pair.privateKey);
      return { entryId: job.entryId, csr: createCsr(job.spiffeId, pair.privateKey) };
    });
    const res = await client.batchX509(params);
    chunk.forEach((job, j) => {
      const r = res.results[j];
      if (!r || r.statusCode !== 0 || !r.svid) {
        job.failed(`CA refused the CSR: ${r?.statusMessage ?? 'no result for it'}`);
        return;
      }
      let svid: X509Svid;
      try {
        const chain = r.svid.certChain.map((d, k) => (k === 0 ? Certificate.fromDer(d) : intermediates.fromDer(d)));
        svid = X509Svid.fromParts(chain, keys[j]!);
      } catch (err) {
        job.failed(describe(err));
        return;
      }
      job.done(svid);
    });
  }
}
