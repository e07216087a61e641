import { runLoad } from '../load.js';
import type { ProcessProbe } from '../servers.js';
import { sender, type ThroughputServers, type Variant } from './throughput.js';

export interface MemoryOptions {
  concurrency: number;
  /** Alternating rounds; each round runs both variants once. */
  rounds: number;
  /** Requests sent before the first snapshot of a run (not counted). */
  warmupRequests: number;
  /** Requests between the two snapshots. */
  requests: number;
  /** Wall-time bound of one run (warm-up and measured part each), in milliseconds. */
  maxRunMs: number;
}

/** Memory retained by one process over one run, after forced full GC at both ends. */
export interface RetainedMemory {
  heapDeltaBytes: number;
  heapBytesPerRequest: number;
  /** Heap delta less compiled code and bytecode, which the JIT grows under load and sheds when idle. */
  dataHeapDeltaBytes: number;
  dataHeapBytesPerRequest: number;
  rssDeltaBytes: number;
}

export interface MemoryRun {
  variant: Variant;
  round: number;
  requests: number;
  /** The process that serves the variant's entry point: the upstream for direct, the gateway for gateway. */
  entry: RetainedMemory;
  /** The upstream process during a gateway run (absent for direct, where it is `entry`). */
  upstreamBehindGateway: RetainedMemory | undefined;
  gcExposed: boolean;
}

/**
 * Case (c): a leak check. Memory *retained* per request, not allocated: after a warm-up, the server
 * processes run full collections (`global.gc`, repeated until the heap stops shrinking), then serve
 * `requests` more calls, then collect again. `heapUsed` after minus before, over the request count,
 * is what each request left behind. A bounded cache or pool shows up as a delta that does not grow
 * with the request count; a leak as a steady positive figure per request. The data-heap figure leaves
 * out compiled code and bytecode: the JIT adds about a megabyte of optimised code under sustained
 * load and sheds it when load drops, which would otherwise swamp a per-request figure.
 */
export async function measureMemory(
  servers: ThroughputServers,
  options: MemoryOptions,
): Promise<MemoryRun[]> {
  const runs: MemoryRun[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    const order: Variant[] = round % 2 === 1 ? ['gateway', 'direct'] : ['direct', 'gateway'];
    for (const variant of order) runs.push(await runOnce(servers, variant, round, options));
  }
  return runs;
}

async function runOnce(
  servers: ThroughputServers,
  variant: Variant,
  round: number,
  options: MemoryOptions,
): Promise<MemoryRun> {
  const send = sender(servers, variant);
  const load = (requests: number) =>
    runLoad({
      concurrency: options.concurrency,
      maxRequests: requests,
      maxDurationMs: options.maxRunMs,
      send,
    });
  const warmup = await load(options.warmupRequests);
  if (warmup.failed > 0) throw new Error(`${variant} warm-up failed: ${warmup.firstError}`);

  const snapshot = () =>
    Promise.all([servers.gateway.probe({ gc: true }), servers.upstream.probe({ gc: true })]);
  const [gatewayBefore, upstreamBefore] = await snapshot();
  const measured = await load(options.requests);
  const [gatewayAfter, upstreamAfter] = await snapshot();
  if (measured.failed > 0) throw new Error(`${variant} run failed: ${measured.firstError}`);

  const retained = (before: ProcessProbe, after: ProcessProbe): RetainedMemory => ({
    heapDeltaBytes: after.heapUsedBytes - before.heapUsedBytes,
    heapBytesPerRequest: (after.heapUsedBytes - before.heapUsedBytes) / measured.completed,
    dataHeapDeltaBytes: after.dataHeapBytes - before.dataHeapBytes,
    dataHeapBytesPerRequest: (after.dataHeapBytes - before.dataHeapBytes) / measured.completed,
    rssDeltaBytes: after.rssBytes - before.rssBytes,
  });
  const upstream = retained(upstreamBefore, upstreamAfter);
  return {
    variant,
    round,
    requests: measured.completed,
    entry: variant === 'gateway' ? retained(gatewayBefore, gatewayAfter) : upstream,
    upstreamBehindGateway: variant === 'gateway' ? upstream : undefined,
    gcExposed: gatewayAfter.gcExposed && upstreamAfter.gcExposed,
  };
}
