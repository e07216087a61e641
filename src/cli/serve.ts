import type { Command } from 'commander';
import { isDevelopmentUnderProductionEnv } from '../config/production.js';
import { createLogger } from '../ops/logger.js';
import { describeStores } from '../stores/open.js';
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
      // Loaded here, not at the top: the other commands start without the server, SDK and HTTP stack.
      const [{ serveGateway }, { bundledDemoUpstream }] = await Promise.all([
        import('../edge/serve.js'),
        import('../demo/bundled.js'),
      ]);
      const logger = createLogger({ level: config.log.level });
      const running = await serveGateway(config, { logger, defaultUpstream: () => bundledDemoUpstream() });
      const { urls } = running.gateway;
      logger.info({ mcp: urls.resource, upstream: config.upstream?.kind ?? 'bundled demo' }, 'listening');
      const accounts = running.gateway.authorizationServer?.accounts;
      const count = accounts === undefined ? undefined : (await accounts.list()).length;
      const lines = [
        '',
        'Gatehouse is listening.',
        `  MCP endpoint:  ${urls.resource}`,
        `  Metadata:      ${urls.resourceMetadataUrl}`,
      ];
      // Behind a load balancer or proxy the public URL names another address than the one bound here.
      const bound = `${config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host}:${running.port}`;
      if (new URL(urls.publicUrl).host !== bound)
        lines.push(`  Bound to:      ${bound}  (public URL ${urls.publicUrl})`);
      const store = describeStores(config);
      lines.push(
        `  Store:         ${store.kind}${store.location === undefined ? '' : ` at ${store.location}`}`,
      );
      if (running.gateway.authorizationServer !== undefined) {
        lines.push(`  Sign-in:       OAuth authorization server, issuer ${urls.issuer}`);
        if (count !== undefined) {
          lines.push(
            count === 0
              ? '  Accounts:      none yet; create one:  npm run gatehouse -- users add alice'
              : `  Accounts:      ${count} local account${count === 1 ? '' : 's'}  (npm run gatehouse -- users list)`,
          );
        }
        lines.push(`  Connect:       npx mcp-remote ${urls.resource}`);
      } else if (config.mode === 'development') {
        lines.push('  Dev token:     npm run token -- --user alice   (development only)');
      }
      if (isDevelopmentUnderProductionEnv(config, process.env)) {
        lines.push(
          '',
          '  !!! DEVELOPMENT MODE although NODE_ENV=production: development tokens are accepted and',
          '  !!! nothing production mode refuses is refused. Remove mode: development (GATEHOUSE_MODE) to fix.',
        );
      }
      process.stderr.write(`${lines.join('\n')}\n\n`);
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
