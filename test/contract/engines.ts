import { afterAll, describe, it } from 'vitest';
import { memoryHarness, type StoreContractOptions, type StoresHarness, sqliteHarness } from './harness.js';
import { dropPostgresSchemas, postgresHarness } from './postgres-harness.js';
import { redisHarness } from './redis-harness.js';

/** The real servers CI provides (`.ci/run` exports both); without them those suites skip, visibly. */
export const POSTGRES_URL = process.env.GATEHOUSE_TEST_POSTGRES_URL;
export const REDIS_URL = process.env.GATEHOUSE_TEST_REDIS_URL;

/** One way to run a contract suite: an adapter, how its harness is built, and what it supports. */
export interface Engine {
  readonly name: string;
  readonly harness: () => Promise<StoresHarness>;
  readonly options: StoreContractOptions;
  /** A shared engine whose limits and bus reach every connection (PostgreSQL, Redis). */
  readonly shared: boolean;
  /** The engine expires keys itself (Redis TTLs), so the optional counter sweep is left out. */
  readonly nativeExpiry?: boolean;
  /** Why the suite cannot run here (its server is not configured); absent when it runs. */
  readonly skip?: string;
}

function postgres(name: string, options: StoreContractOptions): Engine {
  return {
    name,
    harness: postgresHarness(POSTGRES_URL ?? ''),
    options,
    shared: true,
    ...(POSTGRES_URL === undefined && { skip: 'GATEHOUSE_TEST_POSTGRES_URL is not set' }),
  };
}

function redis(name: string, options: StoreContractOptions): Engine {
  return {
    name,
    harness: redisHarness(REDIS_URL ?? ''),
    options,
    shared: true,
    nativeExpiry: true,
    ...(REDIS_URL === undefined && { skip: 'GATEHOUSE_TEST_REDIS_URL is not set' }),
  };
}

/** Every adapter and variant each contract suite runs against. */
export const ENGINES: readonly Engine[] = [
  { name: 'memory', harness: memoryHarness, options: {}, shared: false },
  { name: 'sqlite', harness: sqliteHarness(), options: { durable: true }, shared: false },
  {
    name: 'sqlite, races across two connections',
    harness: sqliteHarness(),
    options: { durable: true, twoConnections: true },
    shared: false,
  },
  {
    name: 'sqlite, caller connection defaulting to BigInt',
    harness: sqliteHarness({ bigIntConnection: true }),
    options: { durable: true },
    shared: false,
  },
  postgres('postgres', { durable: true }),
  postgres('postgres, races across two pools', { durable: true, twoConnections: true }),
  redis('redis', { durable: true }),
  redis('redis, races across two clients', { durable: true, twoConnections: true }),
];

/**
 * Registers `register(engine)` for every engine, or one skipped test saying why an engine cannot run. Call
 * it at the top level of a test file: it also drops the PostgreSQL schemas the file's harnesses made.
 */
export function forEachEngine(register: (engine: Engine) => void): void {
  if (POSTGRES_URL !== undefined) afterAll(() => dropPostgresSchemas(POSTGRES_URL));
  for (const engine of ENGINES) {
    if (engine.skip !== undefined) {
      describe(`store contracts: ${engine.name}`, () => {
        it.skip(`skipped: ${engine.skip}`, () => {});
      });
      continue;
    }
    register(engine);
  }
}
