import { performance } from 'node:perf_hooks';

/** One request of a load run; must reject on any failure (transport, HTTP status or JSON-RPC error). */
export type SendRequest = (virtualUser: number, index: number, signal: AbortSignal) => Promise<void>;

export interface LoadOptions {
  /** Virtual users, each with at most one request in flight (closed loop). */
  concurrency: number;
  /** No request is started once this many have been started. */
  maxRequests: number;
  /** No request is started after this long, in milliseconds. Requests in flight are then awaited. */
  maxDurationMs: number;
  /** Each request is aborted after this long, in milliseconds, so a run always ends. Default 10 000. */
  requestTimeoutMs?: number;
  send: SendRequest;
}

export interface LatencySummary {
  /** Milliseconds, nearest-rank percentiles over successful requests. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface LoadResult {
  /** Requests that succeeded. */
  completed: number;
  failed: number;
  /** Wall time from the first start to the last completion, in milliseconds. */
  durationMs: number;
  /** Successful requests per second of wall time. */
  requestsPerSecond: number;
  latencyMs: LatencySummary;
  /** Whether the run stopped on the time bound rather than the request count. */
  timeBound: boolean;
  /** The first failure, for the report (runs with failures are not comparable). */
  firstError: string | undefined;
}

/**
 * A closed-loop load generator: `concurrency` virtual users each send a request, wait for it, and
 * send the next, until `maxRequests` have been started or `maxDurationMs` has passed, whichever comes
 * first. Every request carries an abort signal with `requestTimeoutMs`, so the run ends by itself.
 *
 * @example
 * const result = await runLoad({ concurrency: 8, maxRequests: 2000, maxDurationMs: 5000, send });
 * console.log(result.requestsPerSecond, result.latencyMs.p99);
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { concurrency, maxRequests, maxDurationMs, send } = options;
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be >= 1');
  if (!Number.isInteger(maxRequests) || maxRequests < 1) throw new RangeError('maxRequests must be >= 1');
  if (!(maxDurationMs > 0)) throw new RangeError('maxDurationMs must be positive');

  const latencies = new Float64Array(maxRequests);
  let started = 0;
  let completed = 0;
  let failed = 0;
  let firstError: string | undefined;
  let timeBound = false;
  const begin = performance.now();
  const deadline = begin + maxDurationMs;

  async function virtualUser(user: number): Promise<void> {
    for (;;) {
      if (started >= maxRequests) return;
      if (performance.now() >= deadline) {
        timeBound = true;
        return;
      }
      const index = started;
      started += 1;
      const sentAt = performance.now();
      try {
        await send(user, index, AbortSignal.timeout(requestTimeoutMs));
        latencies[completed] = performance.now() - sentAt;
        completed += 1;
      } catch (error) {
        failed += 1;
        firstError ??= error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      }
    }
  }

  await Promise.all(Array.from({ length: concurrency }, (_, user) => virtualUser(user)));
  const durationMs = performance.now() - begin;
  const sorted = latencies.subarray(0, completed).sort();
  return {
    completed,
    failed,
    durationMs,
    requestsPerSecond: durationMs > 0 ? (completed * 1000) / durationMs : 0,
    latencyMs: {
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      max: sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] as number),
    },
    timeBound,
    firstError,
  };
}

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

/** Median of a list of numbers (mean of the middle two for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}
