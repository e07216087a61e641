import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isGatehouseError } from '../../../src/errors/gatehouse-error.js';
import type { AuditQuery } from '../../../src/stores/ports.js';
import {
  auditMergeSql,
  auditSelectSql,
  auditTypesSql,
  needsTypeMerge,
} from '../../../src/stores/sql-audit.js';
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
          roles: [],
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

  const HOUR_MS = 3_600_000;

  describe('upgrading a version 5 file', () => {
    /** A file at schema version 5 holding rows written by the code of that time. */
    function versionFiveFile(): void {
      const db = new Database(path);
      try {
        migrateSqlite(db, SQLITE_MIGRATIONS.slice(0, 5));
        db.prepare(
          `INSERT INTO users (id, username, email, name, password_hash, created_at, updated_at, disabled_at,
             credentials_changed_at) VALUES ('usr-1', 'alice', 'alice@example.test', NULL, '$argon2id$h', ?, ?, ?, ?)`,
        ).run(T0, T0 + 2 * HOUR_MS, T0 + 2 * HOUR_MS, T0 + HOUR_MS);
        db.prepare(
          `INSERT INTO clients (client_id, secret_hash, token_endpoint_auth_method, redirect_uris, grant_types,
             response_types, application_type, client_name, client_uri, logo_uri, scope, metadata, created_at,
             expires_at)
           VALUES ('client-1', NULL, 'none', '["http://127.0.0.1/cb"]', '["authorization_code"]', '["code"]',
             'native', 'CLI', NULL, NULL, NULL, '{"client_name":"CLI"}', ?, NULL)`,
        ).run(T0);
        db.prepare(
          `INSERT INTO sessions (id, principal_key, kind, created_at, last_seen_at, idle_timeout_ms,
             idle_expires_at, absolute_expires_at, version, data)
           VALUES ('sess-1', 'local#usr-1', 'websocket', ?, ?, ?, ?, ?, 1, '{}')`,
        ).run(T0, T0, HOUR_MS, T0 + HOUR_MS, T0 + 8 * HOUR_MS);
      } finally {
        db.close();
      }
    }

    it('applies only migration 6 and keeps users (with no roles), clients (unapproved) and sessions', async () => {
      versionFiveFile();
      const db = new Database(path);
      try {
        expect(migrateSqlite(db)).toEqual([6]);
      } finally {
        db.close();
      }
      const stores = createSqliteStores({ path });
      try {
        const user = {
          id: 'usr-1',
          username: 'alice',
          email: 'alice@example.test',
          passwordHash: '$argon2id$h',
          createdAt: T0,
          updatedAt: T0 + 2 * HOUR_MS,
          disabledAt: T0 + 2 * HOUR_MS,
          credentialsChangedAt: T0 + HOUR_MS,
          roles: [],
        };
        expect(await stores.users.get('usr-1')).toStrictEqual(user);
        expect(await stores.users.setRoles('usr-1', ['admin'], T0 + 3 * HOUR_MS)).toStrictEqual({
          ...user,
          roles: ['admin'],
          updatedAt: T0 + 3 * HOUR_MS,
        });
        const client = await stores.clients.get('client-1', T0);
        expect(client).toStrictEqual({
          clientId: 'client-1',
          tokenEndpointAuthMethod: 'none',
          redirectUris: ['http://127.0.0.1/cb'],
          grantTypes: ['authorization_code'],
          responseTypes: ['code'],
          applicationType: 'native',
          clientName: 'CLI',
          metadata: { client_name: 'CLI' },
          createdAt: T0,
        });
        expect(await stores.clients.list(T0, { limit: 10 })).toStrictEqual([client]);
        expect((await stores.sessions.list(T0, { limit: 10 })).map((session) => session.id)).toEqual([
          'sess-1',
        ]);
        expect(await stores.audit.query({ order: 'asc', limit: 10 })).toEqual([]);
      } finally {
        await stores.close();
      }
    });
  });

  it('answers every shape of audit query and each listing from an index, never a scan of the table', () => {
    const db = new Database(':memory:');
    try {
      migrateSqlite(db);
      const plan = (sql: string, values: Record<string, string | number> = {}): string =>
        db
          .prepare(`EXPLAIN QUERY PLAN ${sql}`)
          .all(values)
          .map((row) => (row as { detail: string }).detail)
          .join('; ');
      const audit = (query: AuditQuery): string => {
        const values: Record<string, string | number> = {};
        const bind = (value: string | number): string => {
          const name = `p${Object.keys(values).length}`;
          values[name] = value;
          return `@${name}`;
        };
        const sql = needsTypeMerge(query)
          ? auditMergeSql('audit_log', query, ['oauth.token.issued', 'oauth.token.revoked'], bind)
          : auditSelectSql('audit_log', query, bind);
        return plan(sql, values);
      };
      const after = { at: T0, id: '0001767225600000-x' };
      const shapes = [
        audit({ order: 'desc', limit: 50 }),
        audit({ order: 'asc', limit: 50, since: T0, until: T0 + HOUR_MS }),
        audit({ order: 'asc', limit: 50, after }),
        audit({ order: 'desc', limit: 50, subject: 'usr-1' }),
        audit({ order: 'asc', limit: 50, subject: 'usr-1', since: T0, after }),
        audit({ order: 'desc', limit: 50, type: 'login' }),
        audit({ order: 'desc', limit: 50, type: 'oauth.token.', until: T0 }),
        audit({ order: 'asc', limit: 50, type: 'oauth.token.', after }),
        audit({ order: 'asc', limit: 50, type: 'login', after }),
        plan(
          auditTypesSql('audit_log', 'oauth.', (value) =>
            typeof value === 'number' ? String(value) : `'${value}'`,
          ),
        ),
        plan(
          'DELETE FROM audit_log WHERE rowid IN (SELECT rowid FROM audit_log WHERE at < 5 ORDER BY at, id LIMIT 5)',
        ),
        plan("SELECT * FROM sessions WHERE (created_at, id) > (1, 'a') ORDER BY created_at, id LIMIT 5"),
        plan("SELECT * FROM grants WHERE (created_at, id) > (1, 'a') ORDER BY created_at, id LIMIT 5"),
        plan(
          "SELECT * FROM clients WHERE (created_at, client_id) > (1, 'a') ORDER BY created_at, client_id LIMIT 5",
        ),
      ];
      for (const detail of shapes) {
        expect(detail).toMatch(/USING (COVERING )?INDEX/);
        // No read of a whole table: every access to a table goes through an index.
        expect(detail).not.toMatch(/SCAN (audit_log|sessions|grants|clients)(?! USING)/);
        // A merge of per-type ranges sorts each part's rows (at most the limit); nothing else sorts.
        if (!detail.startsWith('MERGE')) expect(detail).not.toMatch(/USE TEMP B-TREE/);
        else expect(detail).toMatch(/audit_log_type_idx \(type=\?/);
      }
    } finally {
      db.close();
    }
  });
});
