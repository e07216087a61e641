import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema } from '../src/config/schema.js';
import { type RunningGateway, serveGateway } from '../src/edge/serve.js';
import { silentLogger } from '../src/ops/logger.js';

export interface BenchGateway {
  readonly running: RunningGateway;
  /** The gateway's MCP endpoint. */
  readonly mcpUrl: string;
  /** One Gatehouse access token per virtual user (`bench-user-<n>`), valid for `tokenTtlSeconds`. */
  readonly tokens: readonly string[];
  close(): Promise<void>;
}

export interface BenchGatewayOptions {
  /** The upstream's Streamable HTTP endpoint. */
  upstreamUrl: string;
  /** Distinct users to mint tokens for. */
  users: number;
  /** Lifetime of the minted access tokens, in seconds. Default 900 (longer than any bench run). */
  tokenTtlSeconds?: number;
}

/**
 * A real gateway as a deployment would run it in front of an HTTP upstream: `serveGateway` on
 * 127.0.0.1 with an OS-chosen port, memory store, silent log, default verification cache. The tokens
 * are Gatehouse's own access tokens for its MCP endpoint, minted with its signer.
 */
export async function startBenchGateway(options: BenchGatewayOptions): Promise<BenchGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
  const config = configSchema.parse({
    dataDir,
    server: { host: '127.0.0.1', port: 0 },
    store: { kind: 'memory' },
    log: { level: 'silent' },
    upstream: { kind: 'http', url: options.upstreamUrl },
  });
  const running = await serveGateway(config, { logger: silentLogger });
  const { gateway } = running;
  const tokens = await Promise.all(
    Array.from({ length: options.users }, (_, user) =>
      gateway.signer.sign({
        subject: `bench-user-${user}`,
        audience: gateway.urls.resource,
        expiresInSeconds: options.tokenTtlSeconds ?? 900,
        claims: { scope: '', email: `bench-user-${user}@example.test` },
      }),
    ),
  );
  return {
    running,
    mcpUrl: gateway.urls.resource,
    tokens,
    async close() {
      await running.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
