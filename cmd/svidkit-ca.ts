#!/usr/bin/env node
/** Entry point of svidkit-ca: reads flags and config, runs the CA, drains on SIGTERM/SIGINT. */
import { Command } from 'commander';
import { loadCaConfig } from '../lib/ca/config.js';
import { run } from '../lib/ca/daemon.js';
import { isSvidkitError } from '../lib/errors/index.js';

const program = new Command('svidkit-ca')
  .description('svidkit CA daemon: attests node agents and issues X.509-SVIDs and JWT-SVIDs over gRPC')
  .option('-c, --config <file>', 'YAML configuration file')
  .option('--trust-domain <name>', 'trust domain (overrides trust_domain)')
  .option('--data-dir <dir>', 'datastore and key directory (overrides data_dir)')
  .option('--listen-address <address>', 'Node service address (overrides listen.address)')
  .option('--listen-port <port>', 'Node service port (overrides listen.port)')
  .option('--admin-socket <path>', 'admin Unix socket (overrides admin.socket)')
  .option('--log-level <level>', 'debug, info, warn or error (overrides log_level)')
  .parse();

const opts = program.opts<Record<string, string | undefined>>();
const flagKeys: Record<string, string> = {
  trustDomain: 'trust_domain',
  dataDir: 'data_dir',
  listenAddress: 'listen.address',
  listenPort: 'listen.port',
  adminSocket: 'admin.socket',
  logLevel: 'log_level',
};
const flags = new Map<string, string>();
for (const [opt, key] of Object.entries(flagKeys)) if (opts[opt] !== undefined) flags.set(key, opts[opt]);

try {
  const config = await loadCaConfig({ configFile: opts['config'], env: process.env, flags });
  const ca = await run(config);
  const stop = (signal: string) => {
    process.stderr.write(`svidkit-ca: ${signal}, draining\n`);
    ca.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
} catch (err) {
  const code = isSvidkitError(err) ? err.code : 'ERR_INTERNAL';
  process.stderr.write(`error ${code}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
