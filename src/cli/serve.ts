import type { Command } from 'commander';
import { isDevelopmentUnderProductionEnv } from '../config/production.js';
import type { GatehouseConfig } from '../config/schema.js';
import type { RunningGateway, ShutdownOutcome } from '../edge/serve.js';
import { createLogger, type Logger } from '../ops/logger.js';
import { describeStores } from '../stores/open.js';
import { addConfigFlags, type CliConfigFlags, loadCliConfig } from './config-flags.js';

export function registerServe(program: Command): void {
  addConfigFlags(program.command('serve').description('run the gateway in front of an MCP server'), {
    upstream: true,
  }).action(async (flags: CliConfigFlags) => {
    const config = loadCliConfig(flags);
    // Loaded here, not at the top: the other commands start without the server, SDK and HTTP stack.
    const [{ serveGateway }, { bundledDemoUpstream }] = await Promise.all([
      import('../edge/serve.js'),
      import('../demo/bundled.js'),
    ]);
    // Written through process.stdout, synchronous on Linux for files, pipes and terminals (pino's own
    // stream buffers): the start-up lines are out before the banner, and the last line before an exit
    // (a drain cut off at its deadline) is never lost with the process.
    const logger = createLogger({ ...config.log, destination: process.stdout });
    let running: RunningGateway;
    try {
      running = await serveGateway(config, { logger, defaultUpstream: () => bundledDemoUpstream() });
    } catch (error) {
      const refused = bindRefusal(error, config);
      if (refused === undefined) throw error;
      process.stderr.write(refused);
      process.exitCode = 2;
      return;
    }
    // Everything the banner says is gathered first, then the `listening` line and the banner are written
    // together: no log line lands in the middle of it.
    const banner = await bannerLines(config, running);
    logger.info(
      { mcp: running.gateway.urls.resource, upstream: config.upstream?.kind ?? 'bundled demo' },
      'listening',
    );
    process.stderr.write(`${banner.join('\n')}\n\n`);
    handleSignals(running, config, logger);
  });
}

/**
 * SIGTERM and SIGINT drain (see `RunningGateway.shutdown`); exit 0 when everything finished, 1 when the
 * deadline (`server.shutdownTimeoutMs`) cut something off, with a log line saying what. A second signal
 * during the drain exits at once: 143 for SIGTERM, 130 for SIGINT (128 + the signal's number, as a shell
 * reports a process killed by it).
 */
function handleSignals(running: RunningGateway, config: GatehouseConfig, logger: Logger): void {
  let draining = false;
  const onSignal = (signal: 'SIGINT' | 'SIGTERM') => {
    if (draining) {
      logger.warn({ signal }, 'second signal during the drain: exiting now');
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    draining = true;
    const timeoutMs = config.server.shutdownTimeoutMs;
    logger.info({ signal, timeoutMs }, 'draining: finishing requests in flight, then stopping');
    running.shutdown(timeoutMs).then(
      (outcome) => {
        if (outcome.complete) {
          logger.info('stopped');
          process.exit(0);
        }
        logger.error(
          {
            phase: outcome.phase,
            requests: outcome.requests,
            upstreamCalls: outcome.upstreamCalls,
            timeoutMs,
          },
          `shutdown deadline passed: cut off ${describeCutOff(outcome)}`,
        );
        process.exit(1);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
}

function describeCutOff(outcome: ShutdownOutcome): string {
  const parts: string[] = [];
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  if (outcome.requests.length > 0)
    parts.push(`${count(outcome.requests.length, 'request')} (${outcome.requests.join(', ')})`);
  if (outcome.upstreamCalls > 0) parts.push(count(outcome.upstreamCalls, 'WebSocket/SSE upstream call'));
  if (outcome.phase === 'closing') parts.push('closing streams, upstreams, audit and stores');
  return parts.length > 0 ? parts.join('; ') : 'nothing in flight';
}

/** The message for a port that cannot be bound (taken, or privileged), or `undefined` for other errors. */
function bindRefusal(error: unknown, config: GatehouseConfig): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (code !== 'EADDRINUSE' && code !== 'EACCES' && code !== 'EADDRNOTAVAIL') return undefined;
  const { host, port } = config.server;
  const what =
    code === 'EADDRINUSE'
      ? `port ${port} on ${host} is already in use (another Gatehouse, or another server)`
      : code === 'EACCES'
        ? `port ${port} on ${host} may not be bound by this user (ports below 1024 need privileges)`
        : `${host} is not an address of this machine`;
  const change =
    code === 'EADDRNOTAVAIL'
      ? '  Choose the interface with --host, server.host in the config file, or GATEHOUSE_SERVER__HOST.'
      : `  Choose another port with --port ${port === 8787 ? 8788 : 8787}, server.port in the config file, or GATEHOUSE_SERVER__PORT.`;
  return `gatehouse: cannot listen: ${what}.\n${change}\n`;
}

async function bannerLines(config: GatehouseConfig, running: RunningGateway): Promise<string[]> {
  const { urls } = running.gateway;
  const accounts = running.gateway.authorizationServer?.accounts;
  const count = accounts === undefined ? undefined : (await accounts.list()).length;
  const lines = [
    '',
    'Gatehouse is listening.',
    `  MCP endpoint:  ${urls.resource}`,
    `  Metadata:      ${urls.resourceMetadataUrl}`,
    `  Mode:          ${
      config.mode === 'production'
        ? 'production'
        : 'development (development keys and tokens accepted; not for production)'
    }`,
  ];
  // Behind a load balancer or proxy the public URL names another address than the one bound here.
  const bound = `${config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host}:${running.port}`;
  if (new URL(urls.publicUrl).host !== bound)
    lines.push(`  Bound to:      ${bound}  (public URL ${urls.publicUrl})`);
  const store = describeStores(config);
  lines.push(
    `  Store:         ${store.kind}${store.location === undefined ? '' : ` at ${store.location}`}${
      store.durable ? '' : '  (nothing survives a restart)'
    }`,
  );
  lines.push(`  Verifiers:     ${describeVerifiers(config, urls.issuer)}`);
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
  return lines;
}

/** Who may sign tokens the MCP endpoint accepts: Gatehouse's own keys, then every `auth.verifiers` entry. */
function describeVerifiers(config: GatehouseConfig, issuer: string): string {
  const devTokens = config.mode === 'development' && config.auth.devTokens !== false;
  const own = `own keys (issuer ${issuer}${devTokens ? ', development tokens too' : ''})`;
  const others = config.auth.verifiers.map((verifier) =>
    verifier.kind === 'jwks'
      ? `${verifier.name} (JWKS, issuer ${verifier.issuer})`
      : `${verifier.name} (HS256${verifier.issuer === undefined ? '' : `, issuer ${verifier.issuer}`})`,
  );
  return [own, ...others].join('; ');
}
