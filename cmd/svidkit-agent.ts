#!/usr/bin/env node
/** Entry point of svidkit-agent: `run` (the default) keeps workload SVIDs fresh; `status` prints them. */
import { Command } from 'commander';
import { loadAgentConfig } from '../lib/agent/config.js';
import { readStatus, runAgent } from '../lib/agent/daemon.js';
import { formatAgentStatus } from '../lib/agent/status-text.js';
import { isSvidkitError } from '../lib/errors/index.js';
import { createLogger } from '../lib/observe/index.js';

function fail(err: unknown): never {
  const code = isSvidkitError(err) ? err.code : 'ERR_INTERNAL';
  process.stderr.write(`error ${code}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

const program = new Command('svidkit-agent').description(
  'svidkit node agent: attests to the CA and keeps workload SVIDs, keys, bundles and JWT-SVIDs fresh on disk',
);

program
  .command('run', { isDefault: true })
  .description('run the agent')
  .option('-c, --config <file>', 'YAML configuration file')
  .option('--join-token <token>', 'one-time join token (or SVIDKIT_AGENT_JOIN_TOKEN)')
  .action(async (opts: { config?: string; joinToken?: string }) => {
    try {
      const env = { ...process.env };
      if (opts.joinToken) env['SVIDKIT_AGENT_JOIN_TOKEN'] = opts.joinToken;
      const config = await loadAgentConfig({ configFile: opts.config, env });
      const logger = createLogger({ name: 'svidkit-agent', level: config.logLevel });
      const agent = await runAgent(config, { logger });
      const stop = (signal: string) => {
        logger.info({ signal }, 'svidkit-agent stopping; files stay in place');
        agent.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    } catch (err) {
      fail(err);
    }
  });

program
  .command('status')
  .description('list each workload and Workload API entry with its SPIFFE ID, expiry and next rotation')
  .option('-c, --config <file>', 'YAML configuration file (to find the data dir)')
  .option('--json', 'print JSON')
  .action(async (opts: { config?: string; json?: boolean }) => {
    try {
      const config = await loadAgentConfig({ configFile: opts.config, env: process.env });
      const status = await readStatus(config.dataDir);
      if (opts.json) {
        process.stdout.write(JSON.stringify(status, null, 2) + '\n');
        return;
      }
      process.stdout.write(formatAgentStatus(status));
    } catch (err) {
      fail(err);
    }
  });

await program.parseAsync();
