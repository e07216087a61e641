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
const T0 = Date.UTC(2026, 0, 1);

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

  describe('upgrading a version 2 file', () => {
    const MINUTE_MS = 60_000;
    const HOUR_MS = 60 * MINUTE_MS;

    /** A file at schema version 2 holding rows written by the code of that time. */
    function versionTwoFile(): void {
      const db = new Database(path);
      try {
        migrateSqlite(db, SQLITE_MIGRATIONS.slice(0, 2));
        const session = db.prepare(
          `INSERT INTO sessions (id, principal_key, kind, created_at, last_seen_at, idle_expires_at,
             absolute_expires_at, version, data) VALUES (?, 'local#alice', 'streamable-http', ?, ?, ?, ?, 3, ?)`,
        );
        // Established, 30 min idle timeout.
        session.run('sess-idle', T0, T0 + HOUR_MS, T0 + 90 * MINUTE_MS, T0 + 8 * HOUR_MS, '{"step":3}');
        // Idle deadline capped by the absolute one.
        session.run('sess-capped', T0, T0 + 474 * MINUTE_MS, T0 + 8 * HOUR_MS, T0 + 8 * HOUR_MS, '{}');
        db.prepare(
          `INSERT INTO users (id, username, email, name, password_hash, created_at, updated_at)
           VALUES ('usr-1', 'alice', NULL, 'Alice', '$argon2id$old', ?, ?)`,
        ).run(T0, T0 + HOUR_MS);
        db.prepare(
          `INSERT INTO revocations (kind, id, revoked_at, expires_at) VALUES ('grant', 'grant-1', ?, ?)`,
        ).run(T0, T0 + HOUR_MS);
      } finally {
        db.close();
      }
    }

    it('gives each session the idle timeout its deadline was computed with', async () => {
      versionTwoFile();
      const stores = createSqliteStores({ path });
      try {
        const idle = await stores.sessions.get('sess-idle', T0 + HOUR_MS);
        expect(idle).toEqual({
          id: 'sess-idle',
          principalKey: 'local#alice',
          kind: 'streamable-http',
          createdAt: T0,
          lastSeenAt: T0 + HOUR_MS,
          idleTimeoutMs: 30 * MINUTE_MS,
          idleExpiresAt: T0 + 90 * MINUTE_MS,
          absoluteExpiresAt: T0 + 8 * HOUR_MS,
          version: 3,
          data: { step: 3 },
        });
        const touched = await stores.sessions.touch('sess-idle', 'local#alice', T0 + 72 * MINUTE_MS);
        expect(touched?.idleExpiresAt).toBe(T0 + 102 * MINUTE_MS);
        const capped = await stores.sessions.touch('sess-capped', 'local#alice', T0 + 477 * MINUTE_MS);
        expect(capped).toMatchObject({ idleTimeoutMs: 6 * MINUTE_MS, idleExpiresAt: T0 + 8 * HOUR_MS });
      } finally {
        await stores.close();
      }
    });

    it('keeps every user, enabled, with credentials changed at their last update', async () => {
      versionTwoFile();
      const stores = createSqliteStores({ path });
      try {
        const expected = {
          id: 'usr-1',
          username: 'alice',
          name: 'Alice',
          passwordHash: '$argon2id$old',
          createdAt: T0,
          updatedAt: T0 + HOUR_MS,
          credentialsChangedAt: T0 + HOUR_MS,
        };
        expect(await stores.users.findByUsername('alice')).toStrictEqual(expected);
        // The username stays unique after the rebuild.
        expect(await stores.users.create({ ...expected, id: 'usr-2' })).toBe(false);
      } finally {
        await stores.close();
      }
    });

    it('keeps revocations and starts a watermark that grows from there', async () => {
      versionTwoFile();
      const stores = createSqliteStores({ path });
      try {
        expect(await stores.revocations.listSince(0, T0)).toStrictEqual([
          { kind: 'grant', id: 'grant-1', revokedAt: T0, expiresAt: T0 + HOUR_MS },
        ]);
        const before = await stores.revocations.watermark();
        await stores.revocations.add({ kind: 'jti', id: 'jti-1', revokedAt: T0, expiresAt: T0 + HOUR_MS });
        expect(await stores.revocations.watermark()).toBeGreaterThan(before);
      } finally {
        await stores.close();
      }
    });
  });
});
