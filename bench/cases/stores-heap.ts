import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createMemoryStores } from '../../src/stores/memory/index.js';
import {
  benchPrincipalKey,
  inPool,
  NO_CAP,
  principalCount,
  randomId,
  sessionRecord,
} from './stores-records.js';

/*
 * Entry point of the process case (e) forks for the memory engine's storage figure (`heapStorage` in
 * stores.ts), with `--expose-gc`, so the heap it measures holds nothing but the store:
 *   stores-heap.ts <sessions> <concurrency>
 * It reports one `HeapReport` over IPC and exits.
 */

/** Child → parent. */
export type HeapReport =
  | {
      kind: 'done';
      heapDeltaBytes: number;
      rssDeltaBytes: number;
      insertMs: number;
      gcExposed: boolean;
    }
  | { kind: 'failed'; message: string };

const gc = (globalThis as { gc?: () => void }).gc;

/** Full collections with short pauses (finalizers, weak callbacks), then a reading. */
async function settle(): Promise<NodeJS.MemoryUsage> {
  for (let pass = 0; pass < 6; pass++) {
    gc?.();
    await sleep(pass < 3 ? 1 : 20);
  }
  return process.memoryUsage();
}

async function main(): Promise<HeapReport> {
  const count = Number(process.argv[2]);
  const concurrency = Number(process.argv[3]);
  if (!Number.isInteger(count) || !Number.isInteger(concurrency) || count < 1 || concurrency < 1) {
    throw new Error('usage: stores-heap.ts <sessions> <concurrency>');
  }
  const run = randomId().slice(0, 6);
  const stores = createMemoryStores();
  // Warm the code paths first, so compiled code does not count as stored sessions.
  const warm = `${run}w`;
  const warmAt = Date.now();
  for (let i = 0; i < 200; i++) {
    await stores.sessions.create(sessionRecord(warm, i, 200, warmAt, false), NO_CAP, warmAt);
  }
  for (let principal = 0; principal < principalCount(200); principal++) {
    await stores.sessions.deleteByPrincipal(benchPrincipalKey(warm, principal));
  }

  const before = await settle();
  const begin = performance.now();
  const now = Date.now();
  await inPool(count, concurrency, (index) =>
    stores.sessions.create(sessionRecord(run, index, count, now, false), NO_CAP, now),
  );
  const insertMs = performance.now() - begin;
  const after = await settle();
  // Keeps the store reachable until after the reading.
  if ((await stores.sessions.listByPrincipal(benchPrincipalKey(run, 0), now)).length === 0) {
    throw new Error('the stored sessions are gone');
  }
  return {
    kind: 'done',
    heapDeltaBytes: after.heapUsed - before.heapUsed,
    rssDeltaBytes: after.rss - before.rss,
    insertMs,
    gcExposed: gc !== undefined,
  };
}

main().then(
  (report) => process.send?.(report, () => process.exit(0)),
  (error: unknown) => {
    const report: HeapReport = {
      kind: 'failed',
      message: error instanceof Error ? error.message : String(error),
    };
    process.send?.(report, () => process.exit(1));
  },
);
