import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema, type GatehouseConfigInput } from '../../src/config/schema.js';
import { bundledDemoUpstream } from '../../src/demo/bundled.js';
import type { GatewayDeps } from '../../src/edge/gateway.js';
import { type RunningGateway, serveGateway } from '../../src/edge/serve.js';
import { silentLogger } from '../../src/ops/logger.js';

export interface TestGateway extends RunningGateway {
  readonly mcpUrl: URL;
  readonly dataDir: string;
  /** Mints a Gatehouse access token for `user` (audience: this gateway's MCP endpoint). */
  token(
    user: string,
    options?: { scope?: string; email?: string; expiresInSeconds?: number },
  ): Promise<string>;
}

/**
 * Starts a real gateway on a loopback port; the bundled demo is the upstream unless `input.upstream` says
 * otherwise. `deps` override the silent logger and the demo upstream, or add others (`cimdFetch`).
 */
export async function startTestGateway(
  input: GatehouseConfigInput = {},
  deps: GatewayDeps = {},
): Promise<TestGateway> {
  const dataDir = input.dataDir ?? mkdtempSync(join(tmpdir(), 'gatehouse-test-'));
  const config = configSchema.parse({
    ...input,
    dataDir,
    server: { port: 0, ...input.server },
    log: { level: 'silent' },
  });
  const running = await serveGateway(config, {
    logger: silentLogger,
    defaultUpstream: () => bundledDemoUpstream(),
    ...deps,
  });
  const { gateway } = running;
  return {
    ...running,
    dataDir,
    mcpUrl: new URL(gateway.urls.resource),
    token: (user, options = {}) =>
      gateway.signer.sign({
        subject: user,
        audience: gateway.urls.resource,
        expiresInSeconds: options.expiresInSeconds ?? 600,
        claims: {
          scope: options.scope ?? '',
          ...(options.email === undefined ? {} : { email: options.email }),
        },
      }),
    async close() {
      await running.close();
      if (input.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
