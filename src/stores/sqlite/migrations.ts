import type Database from 'better-sqlite3';
import { GatehouseError } from '../../errors/gatehouse-error.js';

/** One schema step. Versions start at 1 and grow by one; a released migration is never edited. */
export interface SqliteMigration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** The SQLite schema, in order. */
export const SQLITE_MIGRATIONS: readonly SqliteMigration[] = [
  {
    version: 1,
    name: 'sessions',
    sql: `
      CREATE TABLE sessions (
        id TEXT PRIMARY KEY NOT NULL,
        principal_key TEXT NOT NULL,
        kind TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        idle_expires_at INTEGER NOT NULL,
        absolute_expires_at INTEGER NOT NULL,
        version INTEGER NOT NULL,
        data TEXT NOT NULL CHECK (json_valid(data))
      );
      -- (principal_key, created_at) serves both the per-principal cap count and the oldest-first listing.
      CREATE INDEX sessions_principal_key_idx ON sessions (principal_key, created_at);
      -- Two single-column indexes let the sweeper's "idle OR absolute" predicate use the OR optimisation.
      CREATE INDEX sessions_idle_expires_at_idx ON sessions (idle_expires_at);
      CREATE INDEX sessions_absolute_expires_at_idx ON sessions (absolute_expires_at);
    `,
  },
];

function assertWellFormed(migrations: readonly SqliteMigration[]): void {
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new Error(`SQLite migration #${index} has version ${migration.version}; expected ${index + 1}.`);
    }
  });
}

function schemaVersion(db: Database.Database): number | undefined {
  const table = db
    .prepare<[], number>("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    .pluck()
    .get();
  if (table === undefined) return undefined;
  return (
    db
      .prepare<[], number | null>('SELECT max(version) FROM schema_migrations')
      .pluck()
      .safeIntegers(false)
      .get() ?? 0
  );
}

/**
 * Brings `db` up to the newest schema in `migrations` and returns the versions it applied (empty when the
 * schema was already current). A current file is recognised with a plain read. Otherwise everything runs in
 * one `BEGIN IMMEDIATE` transaction that checks the version again: a second process opening the same file
 * at the same time waits for the write lock (up to `busy_timeout`), then finds the migrations recorded and
 * applies nothing; a migration that fails rolls back every step of this run.
 *
 * Throws `ERR_STORE_UNAVAILABLE` when the file records a schema version newer than this code knows, so an
 * older Gatehouse never runs against a schema it does not understand.
 *
 * @example
 * ```ts
 * const applied = migrateSqlite(db); // [1] on a new file, [] afterwards
 * ```
 */
export function migrateSqlite(
  db: Database.Database,
  migrations: readonly SqliteMigration[] = SQLITE_MIGRATIONS,
): number[] {
  assertWellFormed(migrations);
  // Fast path without the write lock, so opening a current file never waits behind another writer.
  if (schemaVersion(db) === migrations.length) return [];
  const run = db.transaction((): number[] => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        applied_at INTEGER NOT NULL DEFAULT (unixepoch())
      )
    `);
    const current = schemaVersion(db) ?? 0;
    if (current > migrations.length) {
      throw new GatehouseError(
        'ERR_STORE_UNAVAILABLE',
        `The SQLite database has schema version ${current}, newer than this Gatehouse knows (${migrations.length}).`,
        { details: { schemaVersion: current, supportedVersion: migrations.length } },
      );
    }
    const record = db.prepare<[number, string]>(
      'INSERT INTO schema_migrations (version, name) VALUES (?, ?)',
    );
    const applied: number[] = [];
    for (const migration of migrations.slice(current)) {
      db.exec(migration.sql);
      record.run(migration.version, migration.name);
      applied.push(migration.version);
    }
    return applied;
  });
  return run.immediate();
}
