import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, expect } from 'vitest';
import { createMemoryStores } from '../../src/stores/memory/index.js';
import type { Stores } from '../../src/stores/ports.js';
import { createSqliteStores } from '../../src/stores/sqlite/index.js';

/**
 * One adapter under test, built fresh for every test. Whatever backs it (a temp file, a Postgres schema, a
 * Redis key prefix) must start empty and be private to this harness: the sweeper tests count every
 * expired record in the store.
 */
export interface StoresHarness {
  readonly stores: Stores;
  /**
   * Opens another `Stores` over the same backing data through its own connection (another SQLite
   * connection, another Postgres pool, another Redis client). Required when a suite runs with
   * `twoConnections`; race tests then split their calls across both. `cleanup` closes what it returns.
   */
  readonly second?: () => Promise<Stores>;
  /**
   * Closes `stores` and opens the same backing data again, returning the new `Stores`. Required when a
   * suite runs with `durable`. `cleanup` closes what it returns.
   */
  readonly reopen?: () => Promise<Stores>;
  /** Closes every `Stores` the harness opened and removes the backing data. */
  cleanup(): Promise<void>;
}

export interface StoreContractOptions {
  /** The backend keeps records across close and reopen (not memory): adds the persistence tests. */
  readonly durable?: boolean;
  /** Race tests split their concurrent calls across `stores` and `second()`. */
  readonly twoConnections?: boolean;
}

/** What a contract suite's tests reach through; valid inside a test only. */
export interface ContractContext {
  /** The stores of the current test. */
  readonly stores: Stores;
  /** The stores race tests spread their calls over: one, or two connections to the same data. */
  racers(): Promise<Stores[]>;
  /** Closes the stores and opens the same data again (suites with `durable` only). */
  reopen(): Promise<Stores>;
}

/**
 * Builds a fresh harness before every test of the enclosing `describe` and cleans it up after. Call it
 * directly inside the suite's `describe`.
 */
export function useContractHarness(
  name: string,
  makeStores: () => Promise<StoresHarness>,
  options: StoreContractOptions,
): ContractContext {
  let harness: StoresHarness | undefined;

  beforeEach(async () => {
    harness = await makeStores();
  });

  afterEach(async () => {
    await harness?.cleanup();
    harness = undefined;
  });

  const current = (): StoresHarness => {
    if (harness === undefined) throw new Error(`${name}: the harness exists only inside a test`);
    return harness;
  };

  return {
    get stores() {
      return current().stores;
    },
    async racers() {
      const { stores, second } = current();
      if (!options.twoConnections) return [stores];
      if (second === undefined) throw new Error(`${name}: twoConnections needs harness.second`);
      return [stores, await second()];
    },
    async reopen() {
      const { reopen } = current();
      if (reopen === undefined) throw new Error(`${name}: durable needs harness.reopen`);
      return reopen();
    },
  };
}

/** Picks the racer for call `i`, alternating between the connections. */
export function racer(pool: readonly Stores[], i: number): Stores {
  const stores = pool[i % pool.length];
  if (stores === undefined) throw new Error('racers() returned no stores');
  return stores;
}

export const T0 = Date.UTC(2026, 0, 1);
export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** A value no other test uses, so suites never depend on what another test stored. */
export function unique(prefix: string): string {
  return `${prefix}-${randomUUID()}`;
}

/** Asserts that a record came back, for tests that go on to mutate it. */
export function present<T>(value: T | undefined): T {
  expect(value).toBeDefined();
  return value as T;
}

export function sorted(values: Iterable<string>): string[] {
  return [...values].sort();
}

export async function memoryHarness(): Promise<StoresHarness> {
  const stores = createMemoryStores();
  return { stores, cleanup: () => stores.close() };
}

export interface SqliteHarnessOptions {
  /**
   * Hand the stores a caller-owned connection set to `defaultSafeIntegers(true)`, as an application might:
   * every time and count must still come back as a JS number.
   */
  readonly bigIntConnection?: boolean;
}

/** A fresh database file per test; `second` and `reopen` open further connections to that same file. */
export function sqliteHarness(options: SqliteHarnessOptions = {}): () => Promise<StoresHarness> {
  interface Opened {
    readonly stores: Stores;
    /** The connection the harness owns when the stores were given one (`bigIntConnection`). */
    readonly db?: Database.Database;
  }

  return async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-stores-'));
    const path = join(dir, 'gatehouse.db');
    const opened: Opened[] = [];
    const open = (): Opened => {
      let entry: Opened;
      if (options.bigIntConnection) {
        const db = new Database(path);
        db.defaultSafeIntegers(true);
        entry = { stores: createSqliteStores({ db }), db };
      } else {
        entry = { stores: createSqliteStores({ path }) };
      }
      opened.push(entry);
      return entry;
    };
    const close = async (entry: Opened): Promise<void> => {
      await entry.stores.close();
      if (entry.db?.open) entry.db.close();
    };
    let current = open();
    return {
      stores: current.stores,
      second: async () => open().stores,
      reopen: async () => {
        await close(current);
        current = open();
        return current.stores;
      },
      async cleanup() {
        for (const entry of opened) await close(entry);
        await rm(dir, { recursive: true, force: true });
      },
    };
  };
}

/** Byte order of two ASCII strings, the order of every listing's id tie-break. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Reads a whole listing page by page, as an operator's client does: each page starts after the last
 * record of the previous one (`createdAt` and the id `idOf` reads). Fails when a page is longer than
 * `limit` or the listing does not end within `maxPages`.
 */
export async function readAllPages<T extends { readonly createdAt: number }>(
  list: (page: { limit: number; after?: { createdAt: number; id: string } }) => Promise<T[]>,
  idOf: (record: T) => string,
  limit: number,
  maxPages = 100,
): Promise<{ records: T[]; pages: number }> {
  const records: T[] = [];
  let after: { createdAt: number; id: string } | undefined;
  for (let pages = 0; pages < maxPages; pages += 1) {
    const page = await list({ limit, ...(after && { after }) });
    expect(page.length).toBeLessThanOrEqual(limit);
    if (page.length === 0) return { records, pages };
    records.push(...page);
    const last = page[page.length - 1] as T;
    after = { createdAt: last.createdAt, id: idOf(last) };
  }
  throw new Error(`the listing did not end within ${maxPages} pages`);
}
