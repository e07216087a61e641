import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Stores } from '../../src/stores/ports.js';
import { createPostgresStores } from '../../src/stores/postgres/index.js';
import type { StoresHarness } from './harness.js';

/** Connections per pool: contract files run in two workers, each opening up to three pools at a time. */
const POOL_SIZE = 4;

/**
 * Migrated schemas of this process that no harness holds, emptied and ready for the next test. Creating and
 * migrating a schema costs several times what emptying one does, and the contract suites build a fresh
 * harness for every one of their hundreds of tests; migrations have their own tests.
 */
const idle = new Map<string, string[]>();
/** Every schema this process created, per server: dropped by {@link dropPostgresSchemas}. */
const created = new Map<string, string[]>();

/** Tables a test leaves rows in; the migration bookkeeping and the watermark's one row stay. */
const KEPT_TABLES = new Set(['schema_migrations', 'revocation_watermark']);

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** Empties a schema as a fresh one would be: no records, the revocation watermark back at zero. */
async function empty(url: string, schema: string): Promise<void> {
  await withClient(url, async (client) => {
    const { rows } = await client.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'`,
      [schema],
    );
    const s = pg.escapeIdentifier(schema);
    const tables = rows
      .map((row) => row.table_name)
      .filter((name) => !KEPT_TABLES.has(name))
      .map((name) => `${s}.${pg.escapeIdentifier(name)}`);
    // DELETE, not TRUNCATE: on tables this small it is an order of magnitude faster.
    await client.query(
      [
        ...tables.map((table) => `DELETE FROM ${table};`),
        `UPDATE ${s}.revocation_watermark SET value = 0;`,
      ].join('\n'),
    );
  });
}

/**
 * A schema no other live harness uses, empty and migrated (`gh_test_<pid>_<random>`) on the server at
 * `url`, so no test sees another's records; `second` opens another pool on the same schema, `reopen`
 * closes the stores and opens the schema again, and `cleanup` closes every pool it opened and empties the
 * schema for the next test. Schemas are dropped by {@link dropPostgresSchemas} once the file is done.
 */
export function postgresHarness(url: string): () => Promise<StoresHarness> {
  return async () => {
    const reused = idle.get(url)?.pop();
    const schema = reused ?? `gh_test_${process.pid}_${randomBytes(6).toString('hex')}`;
    if (reused === undefined) created.set(url, [...(created.get(url) ?? []), schema]);
    const opened: Stores[] = [];
    // A schema is migrated by its first opening; a reused one is already up to date.
    let migrated = reused !== undefined;
    const open = async (): Promise<Stores> => {
      const stores = await createPostgresStores({ url, schema, max: POOL_SIZE, migrate: !migrated });
      migrated = true;
      opened.push(stores);
      return stores;
    };
    let current = await open();
    return {
      stores: current,
      second: open,
      async reopen() {
        await current.close();
        current = await open();
        return current;
      },
      async cleanup() {
        for (const stores of opened) await stores.close();
        await empty(url, schema);
        idle.set(url, [...(idle.get(url) ?? []), schema]);
      },
    };
  };
}

/** Drops every schema this process created on `url`; for `afterAll`. */
export async function dropPostgresSchemas(url: string): Promise<void> {
  const schemas = created.get(url) ?? [];
  created.delete(url);
  idle.delete(url);
  if (schemas.length === 0) return;
  await withClient(url, async (client) => {
    for (const schema of schemas)
      await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  });
}
