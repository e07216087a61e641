import { Hono } from 'hono';
import type { UpstreamProbe } from '../bridge/upstream-probe.js';
import type { GatehouseEnv } from '../net/request-context.js';
import type { Clock } from '../ops/clock.js';
import type { Logger } from '../ops/logger.js';
import type { Stores } from '../stores/ports.js';

export interface HealthOptions {
  readonly stores: Stores;
  /** The upstream's probe; absent in library mode (the MCP server is this process). */
  readonly upstream: UpstreamProbe | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
  /** True once the instance drains before stopping: `/readyz` then answers 503 `draining`. */
  readonly draining?: () => boolean;
}

/**
 * `/healthz`: the process answers. `/readyz`: it can serve — the store answers and the upstream can be
 * used (a stdio command that resolves, an HTTP upstream that answers); 503 with what is wrong otherwise,
 * so a load balancer sends no user to an instance that would only fail them. A shared store also reports
 * its cluster bus (`connected` or `reconnecting`), which does not decide readiness. While the instance
 * drains (SIGTERM), `/readyz` answers 503 `draining` at once, so load balancers stop sending; `/healthz`
 * still answers 200 (the process is alive and finishing its work).
 */
export function createHealthApp(options: HealthOptions): Hono<GatehouseEnv> {
  const { stores, upstream, clock, logger, draining } = options;
  const app = new Hono<GatehouseEnv>();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    if (draining?.() === true) return c.json({ status: 'draining' }, 503);
    let store: 'ok' | 'unavailable' = 'ok';
    try {
      await stores.sessions.get('readiness-probe', clock.now());
    } catch (error) {
      logger.error({ err: error }, 'store not ready');
      store = 'unavailable';
    }
    const health = await upstream?.check();
    const ready = store === 'ok' && health?.ok !== false;
    return c.json(
      {
        status: ready ? 'ready' : 'unavailable',
        store: {
          kind: stores.kind,
          status: store,
          // Informational: without the bus an instance still serves, checking revocations per request.
          ...(stores.bus !== undefined && { bus: stores.bus.connected ? 'connected' : 'reconnecting' }),
        },
        ...(health !== undefined && {
          upstream: health.ok ? { status: 'ok' } : { status: 'unavailable', reason: health.reason },
        }),
      },
      ready ? 200 : 503,
    );
  });
  return app;
}
