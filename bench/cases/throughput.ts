import { type LoadResult, runLoad } from '../load.js';
import { callEcho } from '../mcp.js';
import type { ServerProcess } from '../servers.js';

export type Variant = 'direct' | 'gateway';

export interface ThroughputOptions {
  /** Virtual users (requests in flight). */
  concurrency: number;
  /** Alternating rounds; each round runs both variants once. */
  rounds: number;
  /** Request bound of one measured run. */
  requestsPerRun: number;
  /** Wall-time bound of one measured run, in milliseconds. */
  maxRunMs: number;
  /** Unmeasured requests sent to each variant first (JIT, connection pools, per-user upstream clients). */
  warmupRequests: number;
}

/** CPU time spent per successful request, in microseconds, by each process involved. */
export interface CpuPerRequest {
  generator: number;
  gateway: number;
  upstream: number;
}

export interface VariantRun {
  variant: Variant;
  round: number;
  load: LoadResult;
  cpuMicrosPerRequest: CpuPerRequest;
}

export interface ThroughputServers {
  upstream: ServerProcess;
  gateway: ServerProcess;
}

/**
 * Case (a): the same `tools/call` through the gateway (with a bearer token) and straight to the
 * upstream (no auth), with one load generator, in alternating rounds. The variant that goes first
 * alternates too, so neither always runs on a warmer or cooler machine.
 */
export async function measureThroughput(
  servers: ThroughputServers,
  options: ThroughputOptions,
): Promise<VariantRun[]> {
  const runs: VariantRun[] = [];
  for (const variant of ['direct', 'gateway'] as const) {
    await runVariant(servers, variant, options, options.warmupRequests);
  }
  for (let round = 1; round <= options.rounds; round++) {
    const order: Variant[] = round % 2 === 1 ? ['direct', 'gateway'] : ['gateway', 'direct'];
    for (const variant of order) {
      const measured = await runVariant(servers, variant, options, options.requestsPerRun);
      runs.push({ variant, round, ...measured });
    }
  }
  return runs;
}

async function runVariant(
  servers: ThroughputServers,
  variant: Variant,
  options: ThroughputOptions,
  requests: number,
): Promise<{ load: LoadResult; cpuMicrosPerRequest: CpuPerRequest }> {
  const before = await cpuSnapshot(servers);
  const load = await runLoad({
    concurrency: options.concurrency,
    maxRequests: requests,
    maxDurationMs: options.maxRunMs,
    send: sender(servers, variant),
  });
  const after = await cpuSnapshot(servers);
  if (load.failed > 0) {
    throw new Error(
      `${variant}: ${load.failed} of ${load.failed + load.completed} failed: ${load.firstError}`,
    );
  }
  const per = (key: keyof CpuPerRequest) => (after[key] - before[key]) / Math.max(1, load.completed);
  return {
    load,
    cpuMicrosPerRequest: { generator: per('generator'), gateway: per('gateway'), upstream: per('upstream') },
  };
}

/** A request sender for one variant; shared with the memory case so both measure the same traffic. */
export function sender(
  servers: ThroughputServers,
  variant: Variant,
): (user: number, index: number, signal: AbortSignal) => Promise<void> {
  if (variant === 'direct') {
    const url = servers.upstream.url;
    return (_user, index, signal) => callEcho(url, { id: index, signal });
  }
  const { url, tokens } = servers.gateway;
  return (user, index, signal) => callEcho(url, { token: tokens[user % tokens.length], id: index, signal });
}

async function cpuSnapshot(servers: ThroughputServers): Promise<CpuPerRequest> {
  const [gateway, upstream] = await Promise.all([
    servers.gateway.probe({ gc: false }),
    servers.upstream.probe({ gc: false }),
  ]);
  const own = process.cpuUsage();
  return { generator: own.user + own.system, gateway: gateway.cpuMicros, upstream: upstream.cpuMicros };
}
