/** `svidkit jwt ...`: JWT-SVID commands. */
import type { Command } from 'commander';
import { BundleSet, JwtBundle, parseBundleDocument } from '../bundle/index.js';
import { MAX_TOKEN_BYTES, parseAndValidate, parseInsecure } from '../jwtsvid/index.js';
import { TrustDomain } from '../spiffeid/index.js';
import { type CliIo, readInput } from './io.js';
import { atOption, parseTimeOption } from './options.js';

const MAX_BUNDLE_FILE = 4 * 1024 * 1024;

/** Adds `jwt verify`. */
export function registerJwtCommands(program: Command, io: CliIo): void {
  const jwt = program.command('jwt').description('JWT-SVIDs');
  jwt
    .command('verify')
    .description('validate a JWT-SVID for an audience; prints its subject')
    .requiredOption('--token <file>', 'file holding the token, or - for stdin')
    .requiredOption('--bundle <file>', 'JWKS, SPIFFE bundle JSON, or trust_domains map')
    .requiredOption('--audience <aud>', 'the audience this validator is')
    .option('--trust-domain <name>', "whose keys a JWKS or single SPIFFE bundle holds (default: the token subject's)")
    .addOption(atOption())
    .action(async (opts: { token: string; bundle: string; audience: string; trustDomain?: string; at?: string }) => {
      const at = opts.at === undefined ? undefined : parseTimeOption(opts.at);
      // Tokens end with a newline when written by most tools; whitespace is never part of a JWS.
      const token = (await readInput(opts.token, MAX_TOKEN_BYTES + 64, io)).toString('utf8').trim();
      // The subject names the trust domain whose keys to use; its signature is checked below.
      const td =
        opts.trustDomain === undefined ? parseInsecure(token).id.trustDomain : TrustDomain.parse(opts.trustDomain);
      const raw = await readInput(opts.bundle, MAX_BUNDLE_FILE, io);
      let bundles = parseBundleDocument(raw, td);
      const own = bundles.getJwtBundleForTrustDomain(td);
      if (own !== undefined && own.size === 0 && bundles.size === 1) {
        // A plain JWKS (keys without "use") is a JWT bundle, not a SPIFFE bundle.
        bundles = new BundleSet([JwtBundle.parse(td, raw)]);
      }
      const svid = await parseAndValidate(token, bundles, opts.audience, at ? { clock: () => at } : {});
      io.stdout(svid.id.toString() + '\n');
    });
}
