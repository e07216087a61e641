import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import pg from 'pg';
import { sessionsSchema } from '../../src/config/schema.js';
import { systemClock } from '../../src/ops/clock.js';
import { silentEvents } from '../../src/ops/events.js';
import { silentLogger } from '../../src/ops/logger.js';
import { createSessionManager } from '../../src/sessions/manager.js';
import { createMemoryStores } from '../../src/stores/memory/index.js';
import type { SessionStore, Stores } from '../../src/stores/ports.js';
import { createPostgresStores } from '../../src/stores/postgres/index.js';
import { createRedisStores } from '../../src/stores/redis/index.js';
import { createSqliteStores } from '../../src/stores/sqlite/index.js';
import { createRevocationList } from '../../src/tokens/revocation.js';
import type { HeapReport } from './stores-heap.js';
import {
  codeRecord,
  graceResponse,
  grantRecord,
  inPool,
  NO_CAP,
  randomId,
  SESSIONS_PER_PRINCIPAL,
  sessionData,
  sessionRecord,
  tokenHashLike,
} from './stores-records.js';

export type EngineName = 'memory' | 'sqlite' | 'postgres' | 'redis';
export const ENGINES: readonly EngineName[] = ['memory', 'sqlite', 'postgres', 'redis'];

export interface StoresOptions {
  /** Timed operations per latency series. */
  latencyOps: number;
  /** Unmeasured operations before each latency series (at most; they get a quarter of its window). */
  warmupOps: number;
  /** Wall-time bound of one latency series, in milliseconds. */
  latencyMaxRunMs: number;
  /** Live sessions stored for the storage figure. */
  storageSessions: number;
  /** Inserts in flight while filling a store through its port. */
  insertConcurrency: number;
  /** Wall-time bound of one fill through the port, in milliseconds: past it, what is in is what counts. */
  fillMaxRunMs: number;
  /** Expired sessions swept on memory, SQLite and PostgreSQL. */
  sweepSessions: number;
  /** Expired sessions swept on Redis (inserted through the port, so fewer). */
  redisSweepSessions: number;
  /** Expired sessions two PostgreSQL instances sweep together (the double-end check). */
  pairSweepSessions: number;
  /** Wall-time bound of one sweep, in milliseconds: past it the store answers "nothing expired". */
  sweepMaxRunMs: number;
  /** Revocations timed per engine with a bus. */
  revocationRounds: number;
  /** How long one revocation may take to reach the other instance, in milliseconds. */
  revocationTimeoutMs: number;
  /** PostgreSQL server; a fresh schema is created in it and dropped afterwards. */
  postgresUrl: string;
  /** Redis server and database; a fresh key prefix is used and its keys deleted afterwards. */
  redisUrl: string;
  /**
   * Wall-time budget of each engine's phases, in milliseconds, split between them (see `PHASE_ENDS`):
   * every bounded loop also ends with its phase. Single SQL statements and cleanup run to the end, and a
   * phase gets at least a small share even after an overrun, so an engine can exceed its budget a little;
   * none can starve the next.
   */
  engineBudgetMs: Readonly<Record<EngineName, number>>;
}

export type LatencyOp = 'session lookup' | 'code consume' | 'refresh rotation';

export interface LatencyRun {
  op: LatencyOp;
  ops: number;
  timeBound: boolean;
  p50Micros: number;
  p99Micros: number;
}

export interface StorageRun {
  /** Sessions stored (fewer than asked when the fill hit its time bound and the engine has no SQL). */
  sessions: number;
  /** Of them, inserted through `sessions.create` within the time bound (`insertMs`). */
  throughPort: number;
  timeBound: boolean;
  insertMs: number;
  /** The engine's figure: heap, file, relation or server memory growth. */
  bytes: number;
  /** Memory engine only: RSS growth of the same process. */
  rssBytes?: number;
  /** Memory engine only: whether the heap was read after full collections. */
  gcExposed?: boolean;
}

export interface SweepRun {
  /** Expired sessions inserted (fewer than asked when a fill through the port hit its time bound). */
  inserted: number;
  fillTimeBound: boolean;
  /** How the expired sessions got into the store. */
  insertedBy: 'port' | 'sql';
  insertMs: number;
  ended: number;
  durationMs: number;
  sessionsPerSecond: number;
  loopDelayMaxMs: number;
  loopDelayP99Ms: number;
  /** The same monitor over half a second of idle loop just before the sweep: what the machine adds. */
  idleLoopMaxMs: number;
  idleLoopP99Ms: number;
  /** `deleteExpired` calls, and how long one took (a stall of the loop for the synchronous engines). */
  batches: number;
  batchP99Ms: number;
  batchMaxMs: number;
  timeBound: boolean;
}

export interface PairSweepRun {
  /** Expired sessions already in the table (what an earlier, cut-off sweep left). */
  expiredBefore: number;
  inserted: number;
  /** Expired sessions still in the table afterwards (none unless the sweep was cut off). */
  expiredAfter: number;
  endedA: number;
  endedB: number;
  durationMs: number;
  timeBound: boolean;
}

export interface RevocationRun {
  rounds: number;
  /** Rounds whose revocation did not reach the other instance within the timeout. */
  missed: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** A phase's figures, or why there are none. */
export type Phase<T> = { value: T } | { skipped: string } | { failed: string };

export interface EngineRun {
  engine: EngineName;
  /** Where the data lived (no credentials). */
  location: string;
  /** The engine could not be opened: nothing else was measured. */
  skipped?: string;
  latency: Phase<LatencyRun[]>;
  storage: Phase<StorageRun>;
  sweep: Phase<SweepRun>;
  pairSweep: Phase<PairSweepRun>;
  revocation: Phase<RevocationRun>;
  elapsedMs: number;
}

/**
 * `monitorEventLoopDelay` records the time between two of its timer callbacks, the resolution included:
 * an idle loop reads about the resolution. This is that reading, with nothing running.
 */
export interface IdleLoop {
  durationMs: number;
  maxMs: number;
  p99Ms: number;
  meanMs: number;
}

export interface StoresReport {
  /** The event-loop monitor's reading on an idle loop, before any engine. */
  idleLoop: IdleLoop;
  engines: EngineRun[];
}

/** The event-loop monitor's sampling interval, in milliseconds. */
export const LOOP_RESOLUTION_MS = 10;

/** Where the storage figure is taken: fresh stores and a reading of what the engine holds for them. */
interface StorageTarget {
  readonly stores: Stores;
  /** Bytes the engine holds for these stores now (file, relation, server memory). */
  bytes(): Promise<number>;
  /** Inserts live sessions with one SQL statement, for what the port did not get in within its bound. */
  topUp?(run: string, count: number, now: number): Promise<void>;
  /** Closes the stores and removes their data. */
  close(): Promise<void>;
}

/** One engine's stores and what the phases need beyond the ports. */
interface Engine {
  readonly name: EngineName;
  readonly location: string;
  readonly stores: Stores;
  /** Another instance on the same data, with its own connections; absent for the in-process engines. */
  openAnother?(): Promise<Stores>;
  /**
   * Empty stores of their own on this engine (a new file, schema or key prefix) for the storage figure;
   * absent for memory, measured in a process of its own.
   */
  openStorageTarget?(): Promise<StorageTarget>;
  /** Expired sessions at `now`, counted outside the port. */
  countExpired?(now: number): Promise<number>;
  /** Inserts expired sessions with one SQL statement rather than through the port. */
  bulkInsertExpired?(run: string, count: number, now: number): Promise<void>;
  /** Closes every connection and removes every file, schema and key the case created. */
  close(): Promise<void>;
}

const config = sessionsSchema.parse({});

/** The time one phase has left. */
interface Budget {
  /** `performance.now()` time a loop bounded by `ms` must stop at: its own bound or the phase's end. */
  until(ms: number): number;
  /** Milliseconds left. */
  remaining(): number;
}

/**
 * Where each phase must have ended, as a fraction of its engine's budget counted from the engine's start:
 * time a phase leaves unused goes to the next. The sweeps get the most; PostgreSQL's single sweep leaves
 * room for the two-instance one.
 */
export const PHASE_ENDS = {
  latency: 0.15,
  revocation: 0.18,
  sweep: 0.72,
  postgresSweep: 0.62,
  pairSweep: 0.8,
  storage: 1,
} as const;

/** Each phase gets at least this share of its engine's budget, even after an earlier one overran. */
export const MIN_PHASE_SHARE = 0.05;

function phaseBudget(engineStart: number, engineBudgetMs: number, endFraction: number): Budget {
  const end = Math.max(
    engineStart + endFraction * engineBudgetMs,
    performance.now() + MIN_PHASE_SHARE * engineBudgetMs,
  );
  return {
    until: (ms) => Math.min(performance.now() + ms, end),
    remaining: () => Math.max(0, end - performance.now()),
  };
}

/**
 * Case (e): the store ports on every engine — memory, SQLite, PostgreSQL and Redis, each when reachable —
 * through the same port calls the gateway makes. Per engine: sequential latency of the three hot
 * operations, storage for many live sessions, a large sweep through the session manager with the event
 * loop monitored, and (PostgreSQL, Redis) how long a revocation takes to reach another instance over
 * the cluster bus. Everything created is removed afterwards, also when a phase fails.
 */
export async function measureStores(
  options: StoresOptions,
  log: (message: string) => void = () => undefined,
): Promise<StoresReport> {
  const idleLoop = await measureIdleLoop();
  const runs: EngineRun[] = [];
  for (const name of ENGINES) {
    const begin = performance.now();
    const budgetMs = options.engineBudgetMs[name];
    let engine: Engine;
    try {
      engine = await openEngine(name, options);
    } catch (error) {
      const skipped = reason(error);
      log(`  ${name}: skipped: ${skipped}`);
      runs.push({
        engine: name,
        location: locationOf(name, options),
        skipped,
        latency: { skipped },
        storage: { skipped },
        sweep: { skipped },
        pairSweep: { skipped },
        revocation: { skipped },
        elapsedMs: performance.now() - begin,
      });
      continue;
    }
    let second: Stores | undefined;
    const another = async (): Promise<Stores> => {
      if (engine.openAnother === undefined) throw new Error('single-process engine');
      second ??= await engine.openAnother();
      return second;
    };
    // Runs one phase within its share of the engine's budget; logs how long it took.
    const step = async <T>(
      label: string,
      endFraction: number,
      phase: (budget: Budget) => Promise<T>,
    ): Promise<Phase<T>> => {
      const budget = phaseBudget(begin, budgetMs, endFraction);
      const started = performance.now();
      const outcome = await attempt(() => phase(budget));
      const failed = 'failed' in outcome ? ` — failed: ${outcome.failed}` : '';
      log(`  ${name}: ${label} ${((performance.now() - started) / 1000).toFixed(1)} s${failed}`);
      return outcome;
    };
    try {
      // The short phases first and storage last: what a slow engine loses is the tail of the long ones.
      const latency = await step('latency', PHASE_ENDS.latency, (budget) =>
        measureLatency(engine.stores, options, budget),
      );
      const revocation: Phase<RevocationRun> =
        engine.openAnother === undefined
          ? {
              skipped:
                name === 'sqlite'
                  ? 'no bus: another process on the file sees a revocation through the watermark read before every check'
                  : 'no bus: one process only',
            }
          : await step('cross-instance revocation', PHASE_ENDS.revocation, async (budget) =>
              measureRevocation(engine.stores, await another(), options, budget),
            );
      const sweepCount = name === 'redis' ? options.redisSweepSessions : options.sweepSessions;
      const sweepEnd = name === 'postgres' ? PHASE_ENDS.postgresSweep : PHASE_ENDS.sweep;
      const sweep = await step('sweep', sweepEnd, (budget) =>
        measureSweep(engine, sweepCount, options, budget),
      );
      const pairSweep: Phase<PairSweepRun> =
        name === 'postgres'
          ? await step('two sweepers', PHASE_ENDS.pairSweep, async (budget) =>
              measurePairSweep(engine, await another(), options, budget),
            )
          : { skipped: 'PostgreSQL only' };
      const storage = await step('storage', PHASE_ENDS.storage, (budget) =>
        measureStorage(engine, options, budget),
      );
      runs.push({
        engine: name,
        location: engine.location,
        latency,
        storage,
        sweep,
        pairSweep,
        revocation,
        elapsedMs: performance.now() - begin,
      });
    } finally {
      // Closes the second instance too, and removes the data.
      await engine.close().catch((error: unknown) => log(`  ${name}: cleanup failed: ${reason(error)}`));
    }
  }
  return { idleLoop, engines: runs };
}

/* ---------------------------------------------------------------------------------------------- */
/* Phases                                                                                          */
/* ---------------------------------------------------------------------------------------------- */

/** How long the idle loop is watched, in milliseconds. */
const IDLE_SAMPLE_MS = 500;

async function measureIdleLoop(durationMs = IDLE_SAMPLE_MS): Promise<IdleLoop> {
  const delay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  delay.enable();
  await sleep(durationMs);
  delay.disable();
  return {
    durationMs,
    maxMs: delay.max / 1e6,
    p99Ms: delay.percentile(99) / 1e6,
    meanMs: delay.mean / 1e6,
  };
}

/** Sessions the lookup series touches in turn (100 principals × 10). */
const LOOKUP_SESSIONS = 1_000;

async function measureLatency(stores: Stores, options: StoresOptions, budget: Budget): Promise<LatencyRun[]> {
  const run = runTag();
  const now = Date.now();
  const total = options.warmupOps + options.latencyOps;

  const sessions = Array.from({ length: LOOKUP_SESSIONS }, (_, index) =>
    sessionRecord(run, index, LOOKUP_SESSIONS, now, false),
  );
  await inPool(sessions.length, options.insertConcurrency, (index) =>
    stores.sessions.create(at(sessions, index), NO_CAP, now),
  );
  // The phase's time is split evenly between the three series still to run.
  const window = (left: number) => Math.min(options.latencyMaxRunMs, budget.remaining() / left);
  let nextSession = 0;
  const lookup = await timeSeries('session lookup', options, window(3), async () => {
    const session = at(sessions, nextSession++ % sessions.length);
    const touched = await stores.sessions.touch(session.id, session.principalKey, Date.now());
    if (touched === undefined) throw new Error('a live session was not found');
  });

  const codes = Array.from({ length: total }, () => codeRecord(now));
  await inPool(codes.length, options.insertConcurrency, (index) => stores.codes.create(at(codes, index)));
  let nextCode = 0;
  const consume = await timeSeries('code consume', options, window(2), async () => {
    const code = at(codes, nextCode++);
    const result = await stores.codes.consume(code.codeHash, Date.now());
    if (result?.status !== 'consumed') throw new Error(`a fresh code was ${result?.status ?? 'not found'}`);
  });

  const grant = grantRecord(now);
  await stores.grants.create(grant, tokenHashLike());
  // Indexed by the generation being replaced: 1 … total.
  const hashes = Array.from({ length: total + 1 }, tokenHashLike);
  const grace = graceResponse();
  let generation = grant.generation;
  const rotate = await timeSeries('refresh rotation', options, window(1), async () => {
    const rotated = await stores.grants.rotate(
      grant.id,
      generation,
      at(hashes, generation),
      Date.now(),
      grace,
    );
    if (rotated === undefined)
      throw new Error(`rotation of generation ${generation} lost its compare-and-swap`);
    generation = rotated.generation;
  });
  return [lookup, consume, rotate];
}

/**
 * Warm-up (for at most a quarter of `windowMs`), then `latencyOps` sequential operations or until
 * `windowMs` has passed, each timed on its own.
 */
async function timeSeries(
  op: LatencyOp,
  options: StoresOptions,
  windowMs: number,
  operation: () => Promise<void>,
): Promise<LatencyRun> {
  const deadline = performance.now() + windowMs;
  const warmUntil = performance.now() + windowMs / 4;
  for (let i = 0; i < options.warmupOps && performance.now() < warmUntil; i++) await operation();
  const samples = new Float64Array(options.latencyOps);
  let ops = 0;
  while (ops < options.latencyOps && performance.now() < deadline) {
    const begin = performance.now();
    await operation();
    samples[ops++] = performance.now() - begin;
  }
  const sorted = samples.subarray(0, ops).sort();
  return {
    op,
    ops,
    timeBound: ops < options.latencyOps,
    p50Micros: percentile(sorted, 0.5) * 1000,
    p99Micros: percentile(sorted, 0.99) * 1000,
  };
}

async function measureStorage(engine: Engine, options: StoresOptions, budget: Budget): Promise<StorageRun> {
  const count = options.storageSessions;
  if (engine.openStorageTarget === undefined) return heapStorage(count, options.insertConcurrency);
  const target = await engine.openStorageTarget();
  try {
    const before = await target.bytes();
    const run = runTag();
    const now = Date.now();
    const begin = performance.now();
    const inserted = await inPool(
      count,
      options.insertConcurrency,
      (index) => target.stores.sessions.create(sessionRecord(run, index, count, now, false), NO_CAP, now),
      budget.until(options.fillMaxRunMs),
    );
    const insertMs = performance.now() - begin;
    let stored = inserted;
    if (inserted < count && target.topUp !== undefined) {
      await target.topUp(runTag(), count - inserted, now);
      stored = count;
    }
    return {
      sessions: stored,
      throughPort: inserted,
      timeBound: inserted < count,
      insertMs,
      bytes: (await target.bytes()) - before,
    };
  } finally {
    await target.close();
  }
}

const HEAP_ENTRY = fileURLToPath(new URL('./stores-heap.ts', import.meta.url));

/**
 * The memory engine's storage: a fresh process (this one's loader flags plus `--expose-gc`) fills a memory
 * store and reports its heap growth after full collections, untouched by this process's other cases.
 */
async function heapStorage(count: number, concurrency: number): Promise<StorageRun> {
  const child = fork(HEAP_ENTRY, [String(count), String(concurrency)], {
    execArgv: [...process.execArgv, '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  try {
    const report = await new Promise<HeapReport>((resolve, reject) => {
      child.once('message', (message) => resolve(message as HeapReport));
      child.once('exit', (code) => reject(new Error(`the heap probe exited with code ${code}`)));
      child.once('error', reject);
    });
    if (report.kind === 'failed') throw new Error(`heap probe: ${report.message}`);
    return {
      sessions: count,
      throughPort: count,
      timeBound: false,
      insertMs: report.insertMs,
      bytes: report.heapDeltaBytes,
      rssBytes: report.rssDeltaBytes,
      gcExposed: report.gcExposed,
    };
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** Puts `count` expired sessions into the engine; returns how and how long it took. */
async function fillExpired(engine: Engine, count: number, options: StoresOptions, budget: Budget) {
  const run = runTag();
  const now = Date.now();
  const begin = performance.now();
  let inserted = count;
  if (engine.bulkInsertExpired !== undefined) {
    await engine.bulkInsertExpired(run, count, now);
  } else {
    inserted = await inPool(
      count,
      options.insertConcurrency,
      (index) => {
        const record = sessionRecord(run, index, count, now, true);
        return engine.stores.sessions.create(record, NO_CAP, record.createdAt);
      },
      // At most three fifths of what is left, so the sweep of what got in still runs.
      budget.until(Math.min(options.fillMaxRunMs, (budget.remaining() * 3) / 5)),
    );
  }
  return {
    inserted,
    insertedBy: engine.bulkInsertExpired === undefined ? ('port' as const) : ('sql' as const),
    insertMs: performance.now() - begin,
  };
}

async function measureSweep(
  engine: Engine,
  count: number,
  options: StoresOptions,
  budget: Budget,
): Promise<SweepRun> {
  const { inserted, insertedBy, insertMs } = await fillExpired(engine, count, options, budget);
  const idle = await measureIdleLoop(IDLE_SAMPLE_MS);
  const deadline = budget.until(options.sweepMaxRunMs);
  const batchMs: number[] = [];
  const manager = createSessionManager({
    store: instrumented(engine.stores.sessions, deadline, batchMs),
    config,
    clock: systemClock,
    logger: silentLogger,
    events: silentEvents,
    bus: engine.stores.bus,
  });
  const delay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  delay.enable();
  const begin = performance.now();
  let ended: number;
  try {
    ended = await manager.sweep();
  } finally {
    delay.disable();
    manager.close();
  }
  const durationMs = performance.now() - begin;
  const batches = Float64Array.from(batchMs).sort();
  return {
    inserted,
    fillTimeBound: inserted < count,
    insertedBy,
    insertMs,
    ended,
    durationMs,
    sessionsPerSecond: (ended * 1000) / durationMs,
    loopDelayMaxMs: delay.max / 1e6,
    loopDelayP99Ms: delay.percentile(99) / 1e6,
    idleLoopMaxMs: idle.maxMs,
    idleLoopP99Ms: idle.p99Ms,
    batches: batches.length,
    batchP99Ms: percentile(batches, 0.99),
    batchMaxMs: percentile(batches, 1),
    timeBound: performance.now() > deadline,
  };
}

/** Two instances (two `Stores`, each with its own pool) sweep the same expired sessions at once. */
async function measurePairSweep(
  engine: Engine,
  other: Stores,
  options: StoresOptions,
  budget: Budget,
): Promise<PairSweepRun> {
  const count = options.pairSweepSessions;
  const countExpired = engine.countExpired;
  if (countExpired === undefined) throw new Error('the engine cannot count its rows');
  const deadline = budget.until(options.sweepMaxRunMs);
  const expiredBefore = await countExpired(Date.now());
  await fillExpired(engine, count, options, budget);
  const managers = [engine.stores, other].map((stores) =>
    createSessionManager({
      store: instrumented(stores.sessions, deadline, []),
      config,
      clock: systemClock,
      logger: silentLogger,
      events: silentEvents,
      bus: stores.bus,
    }),
  );
  const begin = performance.now();
  try {
    const [endedA = 0, endedB = 0] = await Promise.all(managers.map((manager) => manager.sweep()));
    const durationMs = performance.now() - begin;
    return {
      expiredBefore,
      inserted: count,
      expiredAfter: await countExpired(Date.now()),
      endedA,
      endedB,
      durationMs,
      timeBound: performance.now() > deadline,
    };
  } finally {
    for (const manager of managers) manager.close();
  }
}

/** Wall-time bound of the timed revocation rounds, in milliseconds. */
const REVOCATION_MAX_RUN_MS = 30_000;

/**
 * A revocation list on each of two instances, both listening to the bus; instance A revokes a fresh
 * `jti`, and the delay runs from A's `revoke` returning (stored, announced) until B's in-memory check
 * says revoked, polled every event-loop turn. B never calls `sync`: the figure is the bus path alone.
 */
async function measureRevocation(
  a: Stores,
  b: Stores,
  options: StoresOptions,
  budget: Budget,
): Promise<RevocationRun> {
  const lists = [a, b].map((stores) =>
    createRevocationList({
      store: stores.revocations,
      clock: systemClock,
      logger: silentLogger,
      bus: stores.bus,
    }),
  );
  const [listA, listB] = lists as [(typeof lists)[0], (typeof lists)[0]];
  for (const list of lists) list.start(5_000);
  try {
    const revokeOnce = async (): Promise<number | undefined> => {
      const id = randomId();
      const now = Date.now();
      await listA.revoke({ kind: 'jti', id, revokedAt: now, expiresAt: now + 60_000 });
      const begin = performance.now();
      while (!listB.isRevoked({ jti: id })) {
        if (performance.now() - begin > options.revocationTimeoutMs) return undefined;
        await nextTurn();
      }
      return performance.now() - begin;
    };
    // Both subscriptions up and their first loads done: one untimed round trip.
    const warmDeadline = performance.now() + 10_000;
    while ((await revokeOnce()) === undefined) {
      if (performance.now() > warmDeadline)
        throw new Error('no revocation reached the other instance in 10 s');
    }
    const delays: number[] = [];
    let missed = 0;
    let rounds = 0;
    const deadline = budget.until(REVOCATION_MAX_RUN_MS);
    for (; rounds < options.revocationRounds && performance.now() < deadline; rounds++) {
      const delay = await revokeOnce();
      if (delay === undefined) missed += 1;
      else delays.push(delay);
    }
    const sorted = Float64Array.from(delays).sort();
    return {
      rounds,
      missed,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      maxMs: sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] as number),
    };
  } finally {
    for (const list of lists) list.stop();
  }
}

/* ---------------------------------------------------------------------------------------------- */
/* Engines                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

async function openEngine(name: EngineName, options: StoresOptions): Promise<Engine> {
  switch (name) {
    case 'memory': {
      const stores = createMemoryStores();
      return {
        name,
        location: 'this process',
        stores,
        close: () => stores.close(),
      };
    }
    case 'sqlite':
      return openSqlite();
    case 'postgres':
      return openPostgres(options.postgresUrl);
    case 'redis':
      return openRedis(options.redisUrl);
  }
}

/**
 * `count` sessions created at `createdAt` (expired when that is long enough ago), inserted into the
 * adapter's table with one statement in one transaction: rows like those `sessions.create` writes.
 */
function sqliteInsertSessions(
  db: Database.Database,
): (run: string, count: number, createdAt: number) => void {
  const statement = db.prepare<{ count: number; run: string; createdAt: number; data: string }>(
    `INSERT INTO sessions (id, principal_key, kind, created_at, last_seen_at, idle_timeout_ms, idle_expires_at,
       absolute_expires_at, version, data)
     WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < @count)
     SELECT 's' || lower(hex(randomblob(21))),
       'https://auth.example.test#usr_' || @run || '_' || (i / ${SESSIONS_PER_PRINCIPAL}),
       'streamable-http', @createdAt, @createdAt, ${config.idleTimeoutMs},
       @createdAt + ${config.idleTimeoutMs}, @createdAt + ${config.absoluteLifetimeMs}, 1, @data
     FROM seq`,
  );
  const data = JSON.stringify(sessionData());
  return (run, count, createdAt) => {
    db.transaction(() => statement.run({ count, run, createdAt, data }))();
  };
}

/** The same for PostgreSQL: one `INSERT … SELECT generate_series` into `table` (quoted, qualified). */
async function postgresInsertSessions(
  client: pg.Client,
  table: string,
  run: string,
  count: number,
  createdAt: number,
): Promise<void> {
  await client.query(
    `INSERT INTO ${table} (id, principal_key, kind, created_at, last_seen_at, idle_timeout_ms,
       idle_expires_at, absolute_expires_at, version, data)
     SELECT left(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 43),
       'https://auth.example.test#usr_' || $2::text || '_' || (i / ${SESSIONS_PER_PRINCIPAL}),
       'streamable-http', $3::bigint, $3::bigint, ${config.idleTimeoutMs},
       $3::bigint + ${config.idleTimeoutMs}, $3::bigint + ${config.absoluteLifetimeMs}, 1, $4::json
     FROM generate_series(0, $1::int - 1) AS i`,
    [count, run, createdAt, JSON.stringify(sessionData())],
  );
}

function openSqlite(): Engine {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-stores-'));
  const path = join(dir, 'gatehouse.db');
  const stores = createSqliteStores({ path });
  // A second connection of the bench's own, for the bulk insert and the checkpoint before a size reading.
  const db = new Database(path);
  db.pragma('busy_timeout = 5000');
  const insertExpired = sqliteInsertSessions(db);
  const fileBytes = (file: string) => (existsSync(file) ? statSync(file).size : 0);
  return {
    name: 'sqlite',
    location: 'a temporary file',
    stores,
    async openStorageTarget() {
      const storagePath = join(dir, 'storage.db');
      const target = createSqliteStores({ path: storagePath });
      const reader = new Database(storagePath);
      reader.pragma('busy_timeout = 5000');
      const insertLive = sqliteInsertSessions(reader);
      return {
        stores: target,
        async topUp(run, count, now) {
          insertLive(run, count, now);
        },
        async bytes() {
          reader.pragma('wal_checkpoint(TRUNCATE)');
          return fileBytes(storagePath) + fileBytes(`${storagePath}-wal`);
        },
        async close() {
          await target.close();
          reader.close();
          for (const suffix of ['', '-wal', '-shm']) rmSync(`${storagePath}${suffix}`, { force: true });
        },
      };
    },
    async bulkInsertExpired(run, count, now) {
      insertExpired(run, count, now - 2 * config.absoluteLifetimeMs);
    },
    async close() {
      await stores.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function openPostgres(url: string): Promise<Engine> {
  const schema = `gatehouse_bench_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await admin.connect();
  } catch (error) {
    await admin.end().catch(() => undefined);
    throw new Error(`PostgreSQL not reachable at ${serverLocation(url)} (${reason(error)})`);
  }
  // The storage figure is taken in a schema of its own, so no earlier phase's dead rows are reused.
  const storageSchema = `${schema}_storage`;
  const dropOne = (name: string) => admin.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
  const drop = async () => {
    await dropOne(storageSchema);
    await dropOne(schema);
  };
  const opened: Stores[] = [];
  const open = async (migrate: boolean) => {
    const stores = await createPostgresStores({ url, schema, migrate });
    opened.push(stores);
    return stores;
  };
  let stores: Stores;
  try {
    stores = await open(true);
  } catch (error) {
    await drop().catch(() => undefined);
    await admin.end().catch(() => undefined);
    throw error;
  }
  const table = `"${schema}".sessions`;
  return {
    name: 'postgres',
    location: `${serverLocation(url)}, schema ${schema}`,
    stores,
    openAnother: () => open(false),
    async openStorageTarget() {
      const target = await createPostgresStores({ url, schema: storageSchema });
      return {
        stores: target,
        topUp: (run, count, now) =>
          postgresInsertSessions(admin, `"${storageSchema}".sessions`, run, count, now),
        async bytes() {
          const result = await admin.query<{ bytes: string }>(
            'SELECT pg_total_relation_size($1::regclass)::text AS bytes',
            [`"${storageSchema}".sessions`],
          );
          return Number(result.rows[0]?.bytes);
        },
        async close() {
          await target.close();
          await dropOne(storageSchema);
        },
      };
    },
    async countExpired(now) {
      const result = await admin.query<{ count: string }>(
        `SELECT count(*)::text AS count FROM ${table} WHERE idle_expires_at <= $1 OR absolute_expires_at <= $1`,
        [now],
      );
      return Number(result.rows[0]?.count);
    },
    async bulkInsertExpired(run, count, now) {
      await postgresInsertSessions(admin, table, run, count, now - 2 * config.absoluteLifetimeMs);
    },
    async close() {
      for (const each of opened) await each.close().catch(() => undefined);
      try {
        await drop();
      } finally {
        await admin.end();
      }
    },
  };
}

async function openRedis(url: string): Promise<Engine> {
  const keyPrefix = `gatehouse-bench:${process.pid}:${randomBytes(6).toString('hex')}:`;
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3_000 });
  admin.on('error', () => undefined);
  try {
    await admin.connect();
  } catch (error) {
    admin.disconnect();
    throw new Error(`Redis not reachable at ${serverLocation(url)} (${reason(error)})`);
  }
  const opened: Stores[] = [];
  const open = async () => {
    const stores = await createRedisStores({ url, keyPrefix, connectTimeoutMs: 3_000 });
    opened.push(stores);
    return stores;
  };
  const deleteKeys = async (prefix: string) => {
    const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await admin.unlink(...keys);
    } while (cursor !== '0');
  };
  let stores: Stores;
  try {
    stores = await open();
  } catch (error) {
    admin.disconnect();
    throw error;
  }
  return {
    name: 'redis',
    location: `${serverLocation(url)}, prefix ${keyPrefix}`,
    stores,
    openAnother: open,
    async openStorageTarget() {
      // Under the main prefix, so the final cleanup covers it too.
      const storagePrefix = `${keyPrefix}storage:`;
      const target = await createRedisStores({ url, keyPrefix: storagePrefix, connectTimeoutMs: 3_000 });
      return {
        stores: target,
        async bytes() {
          const info = await admin.info('memory');
          const match = /^used_memory:(\d+)/m.exec(info);
          if (match?.[1] === undefined) throw new Error('INFO memory has no used_memory');
          return Number(match[1]);
        },
        async close() {
          await target.close();
          await deleteKeys(storagePrefix);
        },
      };
    },
    async close() {
      for (const each of opened) await each.close().catch(() => undefined);
      try {
        await deleteKeys(keyPrefix);
      } finally {
        admin.disconnect();
      }
    },
  };
}

/* ---------------------------------------------------------------------------------------------- */
/* Helpers                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

/**
 * The store with every `deleteExpired` call timed into `batchMs`, answering "nothing expired" once
 * `deadline` (a `performance.now()` time) has passed, so a sweep that is too slow ends its loop instead
 * of the bench running unbounded.
 */
function instrumented(store: SessionStore, deadline: number, batchMs: number[]): SessionStore {
  const deleteExpired: SessionStore['deleteExpired'] = async (now, limit) => {
    if (performance.now() > deadline) return [];
    const begin = performance.now();
    const removed = await store.deleteExpired(now, limit);
    batchMs.push(performance.now() - begin);
    return removed;
  };
  return new Proxy(store, {
    get: (target, key, receiver) =>
      key === 'deleteExpired' ? deleteExpired : Reflect.get(target, key, receiver),
  });
}

async function attempt<T>(phase: () => Promise<T>): Promise<Phase<T>> {
  try {
    return { value: await phase() };
  } catch (error) {
    return { failed: reason(error) };
  }
}

function at<T>(list: readonly T[], index: number): T {
  const item = list[index];
  if (item === undefined) throw new Error(`index ${index} is past the prepared ${list.length}`);
  return item;
}

/** Nearest-rank percentile of ascending `sorted` (`q` in 0…1); NaN when empty. */
function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

/** A short tag keeping one data set's principals apart from another's. */
function runTag(): string {
  return randomBytes(4).toString('hex');
}

function reason(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return reason(error.errors[0]);
  return error instanceof Error ? error.message : String(error);
}

/** `protocol//host/path` of a server URL: never its user name or password. */
function serverLocation(text: string): string {
  try {
    const url = new URL(text);
    return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
  } catch {
    return '(unparsable URL)';
  }
}

function locationOf(name: EngineName, options: StoresOptions): string {
  switch (name) {
    case 'memory':
      return 'this process';
    case 'sqlite':
      return 'a temporary file';
    case 'postgres':
      return serverLocation(options.postgresUrl);
    case 'redis':
      return serverLocation(options.redisUrl);
  }
}
