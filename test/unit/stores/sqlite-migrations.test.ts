import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isGatehouseError } from '../../../src/errors/gatehouse-error.js';
import { createSqliteStores } from '../../../src/stores/sqlite/index.js';
import { migrateSqlite, SQLITE_MIGRATIONS } from '../../../src/stores/sqlite/migrations.js';

const ALL_VERSIONS = SQLITE_MIGRATIONS.map((migration) => migration.version);

function appliedVersions(path: string): number[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare<[], number>('SELECT version FROM schema_migrations ORDER BY version').pluck().all();
  } finally {
    db.close();
  }
}

function schemaObjects(db: Database.Database): string[] {
  return db
    .prepare<[], string>("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
    .pluck()
    .all();
}

describe('SQLite migrations', () => {
  let dir: string;
  let path: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gatehouse-migrations-'));
    path = join(dir, 'nested-name.db');
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates the database file and applies every migration once', async () => {
    expect(existsSync(path)).toBe(false);

    const stores = createSqliteStores({ path });
    await stores.close();

    expect(existsSync(path)).toBe(true);
    expect(appliedVersions(path)).toEqual(ALL_VERSIONS);
  });

  it('creates the sessions table and its principal and expiry indexes (version 1)', () => {
    const db = new Database(':memory:');
    try {
      migrateSqlite(db, SQLITE_MIGRATIONS.slice(0, 1));
      expect(schemaObjects(db)).toEqual([
        'schema_migrations',
        'sessions',
        'sessions_absolute_expires_at_idx',
        'sessions_idle_expires_at_idx',
        'sessions_principal_key_idx',
      ]);
    } finally {
      db.close();
    }
  });

  it('applies nothing when the file is opened again', async () => {
    await createSqliteStores({ path }).close();
    const db = new Database(path);
    try {
      expect(migrateSqlite(db)).toEqual([]);
    } finally {
      db.close();
    }
    await createSqliteStores({ path }).close();

    expect(appliedVersions(path)).toEqual(ALL_VERSIONS);
  });

  it('returns the versions it applied', () => {
    const db = new Database(path);
    try {
      expect(migrateSqlite(db)).toEqual(ALL_VERSIONS);
      expect(migrateSqlite(db)).toEqual([]);
    } finally {
      db.close();
    }
  });

  it('applies only the migrations a file does not have yet', () => {
    const db = new Database(path);
    try {
      const first = { version: 1, name: 'first', sql: 'CREATE TABLE first (id INTEGER PRIMARY KEY)' };
      const second = { version: 2, name: 'second', sql: 'CREATE TABLE second (id INTEGER PRIMARY KEY)' };
      expect(migrateSqlite(db, [first])).toEqual([1]);
      expect(migrateSqlite(db, [first, second])).toEqual([2]);
      expect(schemaObjects(db)).toEqual(['first', 'schema_migrations', 'second']);
    } finally {
      db.close();
    }
  });

  it('rolls back the whole run when one migration fails', () => {
    const db = new Database(path);
    try {
      const good = { version: 1, name: 'good', sql: 'CREATE TABLE good (id INTEGER PRIMARY KEY)' };
      const bad = { version: 2, name: 'bad', sql: 'CREATE TABLE broken (' };

      expect(() => migrateSqlite(db, [good, bad])).toThrow();

      expect(schemaObjects(db)).toEqual([]);
      expect(migrateSqlite(db, [good])).toEqual([1]);
    } finally {
      db.close();
    }
  });

  it('refuses a file whose schema is newer than this code with ERR_STORE_UNAVAILABLE', async () => {
    await createSqliteStores({ path }).close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_migrations (version, name) VALUES (?, ?)').run(
      ALL_VERSIONS.length + 1,
      'future',
    );
    db.close();

    let thrown: unknown;
    try {
      createSqliteStores({ path });
    } catch (error) {
      thrown = error;
    }

    expect(isGatehouseError(thrown, 'ERR_STORE_UNAVAILABLE')).toBe(true);
  });

  it('rejects a migration list whose versions are not 1, 2, 3, …', () => {
    const db = new Database(':memory:');
    try {
      expect(() => migrateSqlite(db, [{ version: 2, name: 'gap', sql: 'SELECT 1' }])).toThrow();
      expect(schemaObjects(db)).toEqual([]);
    } finally {
      db.close();
    }
  });
});
