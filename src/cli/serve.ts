import type { Command } from 'commander';
import { bundledDemoUpstream } from '../demo/bundled.js';
import { createLogger } from '../ops/logger.js';
import { serveGateway } from '../server.js';
import { type CliConfigFlags, loadCliConfig } from './config-flags.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the gateway in front of an MCP server')
    .option('-c, --config <file>', 'JSON config file (default: $GATEHOUSE_CONFIG)')
    .option('--host <host>', 'interface to bind (default 127.0.0.1)')
    .option('-p, --port <port>', 'port to bind (default 8787)')
    .option('--public-url <url>', 'base URL clients use to reach Gatehouse')
    .option('--upstream-command <command>', 'stdio MCP server to run, one process per session')
    .option('--upstream-url <url>', 'Streamable HTTP MCP server to relay to')
    .option('--data-dir <dir>', 'where the database and signing keys live (default ./.gatehouse)')
    .action(async (flags: CliConfigFlags) => {
      const config = loadCliConfig(flags);
      const logger = createLogger({ level: config.log.level });
      const running = await serveGateway(config, { logger, defaultUpstream: () => bundledDemoUpstream() });
      const { urls } = running.gateway;
      logger.info({ mcp: urls.resource, upstream: config.upstream?.kind ?? 'bundled demo' }, 'listening');
      process.stderr.write(
        `\nGatehouse is listening.\n  MCP endpoint:  ${urls.resource}\n  Metadata:      ${urls.resourceMetadataUrl}\n` +
          `  Dev token:     npm run token -- --user alice   (development only)\n\n`,
      );
      const shutdown = (signal: string) => {
        logger.info({ signal }, 'shutting down');
        running.close().then(
          () => process.exit(0),
          (error: unknown) => {
            logger.error({ err: error }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.once('SIGINT', () => shutdown('SIGINT'));
      process.once('SIGTERM', () => shutdown('SIGTERM'));
    });
}
