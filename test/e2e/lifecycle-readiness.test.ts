import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

describe('/readyz follows the upstream', () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  it('turns 503 when a configured HTTP upstream goes down, and ready again when it is back', async () => {
    const start = (port: number) =>
      new Promise<Server>((resolve) => {
        const server = serve({ hostname: '127.0.0.1', port, fetch: () => new Response('ok') }) as Server;
        server.once('listening', () => resolve(server));
      });
    let upstream = await start(0);
    const port = (upstream.address() as { port: number }).port;
    cleanup.push(() => {
      upstream.close();
    });
    const gw: TestGateway = await startTestGateway({
      store: { kind: 'memory' },
      upstream: { kind: 'http', url: `http://127.0.0.1:${port}/mcp` },
    });
    cleanup.push(() => gw.close());
    const readyz = new URL('/readyz', gw.gateway.urls.publicUrl);
    const ready = await fetch(readyz);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', upstream: { status: 'ok' } });

    await new Promise<void>((resolve) => {
      upstream.close(() => resolve());
      upstream.closeAllConnections();
    });
    // The probe's answer is reused for a few seconds; then the outage shows.
    await vi.waitFor(
      async () => {
        const response = await fetch(readyz);
        expect(response.status).toBe(503);
        expect(await response.json()).toMatchObject({
          status: 'unavailable',
          upstream: { status: 'unavailable', reason: 'upstream_unreachable' },
        });
      },
      { timeout: 20_000, interval: 250 },
    );

    upstream = await start(port);
    await vi.waitFor(async () => expect((await fetch(readyz)).status).toBe(200), {
      timeout: 20_000,
      interval: 250,
    });
  }, 60_000);
});
