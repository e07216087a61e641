import { createUpstreamProbe } from '../bridge/upstream-probe.js';
import type { GatehouseConfig } from '../config/schema.js';
import type { Clock } from '../ops/clock.js';
import type { DoctorCheck } from './check.js';

/**
 * The upstream, checked the way `serve` and `/readyz` check it: a stdio command must resolve to an
 * executable (`serve` refuses to start otherwise), an HTTP upstream must answer at all. Nothing is spawned
 * and no token is sent.
 */
export async function upstreamCheck(config: GatehouseConfig, clock: Clock): Promise<DoctorCheck> {
  const { upstream } = config;
  if (upstream === undefined) {
    return { id: 'upstream', status: 'ok', summary: 'no upstream configured: serve runs the bundled demo' };
  }
  const health = await createUpstreamProbe(upstream, { clock, cacheMs: 0 }).check();
  if (health.ok) return { id: 'upstream', status: 'ok', summary: health.detail };
  return {
    id: 'upstream',
    status: 'fail',
    summary: health.detail,
    details: { reason: health.reason },
    hints:
      upstream.kind === 'stdio'
        ? [
            'check upstream.command (an absolute path, or a name on the PATH of upstream.env) and its permissions',
          ]
        : ['start the upstream, or check upstream.url; /readyz answers 503 until it answers'],
  };
}
