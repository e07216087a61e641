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
  {
    version: 2,
    name: 'authorization server',
    // STRICT tables reject a value of the wrong type instead of storing it; JSON columns must be valid JSON
    // of the expected shape. Every index serves one query of the ports: an expiry sweep, a lookup by
    // principal, or the ordering of a listing.
    sql: `
      CREATE TABLE users (
        id TEXT PRIMARY KEY NOT NULL,
        username TEXT NOT NULL UNIQUE,
        email TEXT,
        name TEXT,
        password_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE clients (
        client_id TEXT PRIMARY KEY NOT NULL,
        secret_hash TEXT,
        token_endpoint_auth_method TEXT NOT NULL,
        redirect_uris TEXT NOT NULL CHECK (json_valid(redirect_uris) AND json_type(redirect_uris) = 'array'),
        grant_types TEXT NOT NULL CHECK (json_valid(grant_types) AND json_type(grant_types) = 'array'),
        response_types TEXT NOT NULL
          CHECK (json_valid(response_types) AND json_type(response_types) = 'array'),
        application_type TEXT NOT NULL,
        client_name TEXT,
        client_uri TEXT,
        logo_uri TEXT,
        scope TEXT,
        metadata TEXT NOT NULL CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
        created_at INTEGER NOT NULL,
        expires_at INTEGER
      ) STRICT;

      CREATE TABLE authorization_codes (
        code_hash TEXT PRIMARY KEY NOT NULL,
        grant_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        code_challenge TEXT NOT NULL,
        resource TEXT NOT NULL,
        scopes TEXT NOT NULL CHECK (json_valid(scopes) AND json_type(scopes) = 'array'),
        principal TEXT NOT NULL CHECK (json_valid(principal) AND json_type(principal) = 'object'),
        auth_time INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        -- Set by the first consume; the row stays until it expires so that replays are recognised.
        consumed_at INTEGER
      ) STRICT;
      CREATE INDEX authorization_codes_expires_at_idx ON authorization_codes (expires_at);

      CREATE TABLE grants (
        id TEXT PRIMARY KEY NOT NULL,
        client_id TEXT NOT NULL,
        -- 'idp#subject' of principal, for listByPrincipal.
        principal_key TEXT NOT NULL,
        principal TEXT NOT NULL CHECK (json_valid(principal) AND json_type(principal) = 'object'),
        scopes TEXT NOT NULL CHECK (json_valid(scopes) AND json_type(scopes) = 'array'),
        resource TEXT NOT NULL,
        auth_time INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER,
        generation INTEGER NOT NULL,
        rotated_at INTEGER NOT NULL,
        grace_response TEXT
      ) STRICT;
      CREATE INDEX grants_principal_key_idx ON grants (principal_key, created_at);
      CREATE INDEX grants_expires_at_idx ON grants (expires_at);

      -- Every refresh token a grant ever issued, so a reused old generation is recognised until the grant
      -- is swept; the sweep deletes a grant's tokens with it.
      CREATE TABLE refresh_tokens (
        token_hash TEXT PRIMARY KEY NOT NULL,
        grant_id TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
        generation INTEGER NOT NULL
      ) STRICT;
      -- Also the index the cascade from grants needs.
      CREATE UNIQUE INDEX refresh_tokens_grant_generation_idx ON refresh_tokens (grant_id, generation);

      CREATE TABLE revocations (
        kind TEXT NOT NULL CHECK (kind IN ('grant', 'jti')),
        id TEXT NOT NULL,
        revoked_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (kind, id)
      ) STRICT;
      CREATE INDEX revocations_revoked_at_idx ON revocations (revoked_at);
      CREATE INDEX revocations_expires_at_idx ON revocations (expires_at);

      -- The primary key serves get and listByPrincipal (ordered by client id).
      CREATE TABLE consents (
        principal_key TEXT NOT NULL,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL CHECK (json_valid(scopes) AND json_type(scopes) = 'array'),
        granted_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (principal_key, client_id)
      ) STRICT;

      CREATE TABLE upstream_tokens (
        principal_key TEXT NOT NULL,
        provider TEXT NOT NULL,
        ciphertext TEXT NOT NULL,
        access_expires_at INTEGER,
        updated_at INTEGER NOT NULL,
        version INTEGER NOT NULL,
        PRIMARY KEY (principal_key, provider)
      ) STRICT;

      CREATE TABLE signing_keys (
        kid TEXT PRIMARY KEY NOT NULL,
        alg TEXT NOT NULL,
        public_jwk TEXT NOT NULL CHECK (json_valid(public_jwk) AND json_type(public_jwk) = 'object'),
        private_jwk_ciphertext TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        retires_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX signing_keys_expires_at_idx ON signing_keys (expires_at);

      CREATE TABLE ephemeral_records (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL CHECK (json_valid(value) AND json_type(value) = 'object'),
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, key)
      ) STRICT;
      CREATE INDEX ephemeral_records_expires_at_idx ON ephemeral_records (expires_at);

      CREATE TABLE counters (
        key TEXT PRIMARY KEY NOT NULL,
        count INTEGER NOT NULL,
        reset_at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX counters_reset_at_idx ON counters (reset_at);
    `,
  },
  {
    version: 3,
    name: 'session idle timeout',
    // A pending session gets a shorter idle timeout than an established one, so each row carries its own.
    // Existing rows get the timeout their deadline was computed with. Where `absolute_expires_at` capped
    // that deadline the true timeout was longer, but the difference is still exact in effect: every later
    // touch happens at or after `last_seen_at`, so `min(now + difference, absolute_expires_at)` is the
    // absolute deadline either way. ADD COLUMN keeps this cheap on a large table; its default 0 is never
    // used by the adapter, and would fail closed (a touch ending the session at once) if it were.
    sql: `
      ALTER TABLE sessions
        ADD COLUMN idle_timeout_ms INTEGER NOT NULL DEFAULT 0 CHECK (idle_timeout_ms >= 0);
      UPDATE sessions SET idle_timeout_ms = max(idle_expires_at - last_seen_at, 0);
    `,
  },
  {
    version: 4,
    name: 'user credentials and disabling',
    // Rebuilt rather than altered so that credentials_changed_at has no default: a default would silently
    // make every earlier sign-in count. Existing users get updated_at, the last password change or rehash:
    // never earlier than the real last change, so at worst a user whose last update was a rehash signs in
    // once more, and nothing authenticated with a replaced password survives the upgrade.
    sql: `
      CREATE TABLE users_v4 (
        id TEXT PRIMARY KEY NOT NULL,
        username TEXT NOT NULL UNIQUE,
        email TEXT,
        name TEXT,
        password_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        disabled_at INTEGER,
        credentials_changed_at INTEGER NOT NULL
      ) STRICT;
      INSERT INTO users_v4 (id, username, email, name, password_hash, created_at, updated_at, disabled_at,
          credentials_changed_at)
        SELECT id, username, email, name, password_hash, created_at, updated_at, NULL, updated_at FROM users;
      DROP TABLE users;
      ALTER TABLE users_v4 RENAME TO users;
    `,
  },
  {
    version: 5,
    name: 'revocation watermark',
    // One row counting every revocation ever added, bumped by a trigger so that no writer (the revocation
    // port, a grant revoked in the same transaction, another process) can add an entry without moving it.
    // Unlike max(rowid) it never goes back when the sweep deletes the newest rows. An upsert that keeps
    // an existing entry inserts nothing and leaves it alone.
    sql: `
      CREATE TABLE revocation_watermark (
        id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
        value INTEGER NOT NULL
      ) STRICT;
      INSERT INTO revocation_watermark (id, value) SELECT 1, count(*) FROM revocations;
      CREATE TRIGGER revocations_move_watermark AFTER INSERT ON revocations
      BEGIN
        UPDATE revocation_watermark SET value = value + 1 WHERE id = 1;
      END;
    `,
  },
  {
    version: 6,
    name: 'operators: roles, client approval, listings, audit log',
    // Users stored before get no roles (the column's default) and clients no approval: ADD COLUMN keeps
    // both cheap on a large table. The listings of every session, grant and client page by (created_at,
    // id), which each index serves in order. The audit log is read by time, by subject and time, and by
    // type (exact or a prefix range) and time; each of those indexes ends in (at, id) so a page is one
    // index range in either direction, and retention deletes a prefix of the time index.
    sql: `
      ALTER TABLE users ADD COLUMN roles TEXT NOT NULL DEFAULT '[]'
        CHECK (json_valid(roles) AND json_type(roles) = 'array');
      ALTER TABLE clients ADD COLUMN approved_at INTEGER;

      CREATE INDEX sessions_created_at_idx ON sessions (created_at, id);
      CREATE INDEX grants_created_at_idx ON grants (created_at, id);
      CREATE INDEX clients_created_at_idx ON clients (created_at, client_id);

      CREATE TABLE audit_log (
        id TEXT PRIMARY KEY NOT NULL,
        at INTEGER NOT NULL,
        type TEXT NOT NULL,
        outcome TEXT,
        subject TEXT,
        principal TEXT,
        client_id TEXT,
        request_id TEXT,
        ip TEXT,
        event TEXT NOT NULL CHECK (json_valid(event) AND json_type(event) = 'object')
      ) STRICT;
      CREATE INDEX audit_log_at_idx ON audit_log (at, id);
      CREATE INDEX audit_log_subject_idx ON audit_log (subject, at, id) WHERE subject IS NOT NULL;
      CREATE INDEX audit_log_type_idx ON audit_log (type, at, id);
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
 * const applied = migrateSqlite(db); // [1, 2, …, 6] on a new file, [] afterwards
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
