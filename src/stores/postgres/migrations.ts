import type { Pool } from 'pg';
import pg from 'pg';
import { GatehouseError } from '../../errors/gatehouse-error.js';
import { inTransaction, type Queryable } from './context.js';
import { qualifiedTables, type Tables } from './tables.js';

/** One schema step. Versions start at 1 and grow by one; a released migration is never edited. */
export interface PostgresMigration {
  readonly version: number;
  readonly name: string;
  /** The step's SQL (several statements), given the schema's tables, quoted and qualified. */
  readonly sql: (tables: Tables, schema: string) => string;
}

/**
 * The PostgreSQL schema, in order. Times are epoch milliseconds in `bigint` columns. Keys and every column
 * a listing is ordered by use the `C` collation: byte order, as SQLite and the memory adapter sort, and
 * the same on every server whatever its locale. JSON columns are `json`, which keeps the text as written
 * and rejects anything that is not JSON; each is checked for the shape the ports store in it. Every index
 * serves one query of the ports: an expiry sweep, a lookup by principal, or the ordering of a listing.
 */
export const POSTGRES_MIGRATIONS: readonly PostgresMigration[] = [
  {
    version: 1,
    name: 'stores',
    sql: (t, schema) => `
      CREATE TABLE ${t.sessions} (
        id text COLLATE "C" NOT NULL,
        principal_key text COLLATE "C" NOT NULL,
        kind text NOT NULL,
        created_at bigint NOT NULL,
        last_seen_at bigint NOT NULL,
        idle_timeout_ms bigint NOT NULL CHECK (idle_timeout_ms >= 0),
        idle_expires_at bigint NOT NULL,
        absolute_expires_at bigint NOT NULL,
        version integer NOT NULL,
        data json NOT NULL CHECK (json_typeof(data) = 'object'),
        CONSTRAINT sessions_pkey PRIMARY KEY (id)
      );
      -- (principal_key, created_at) serves both the per-principal cap count and the oldest-first listing.
      CREATE INDEX sessions_principal_key_idx ON ${t.sessions} (principal_key, created_at);
      -- Two single-column indexes let the sweeper's "idle OR absolute" predicate use a BitmapOr.
      CREATE INDEX sessions_idle_expires_at_idx ON ${t.sessions} (idle_expires_at);
      CREATE INDEX sessions_absolute_expires_at_idx ON ${t.sessions} (absolute_expires_at);

      CREATE TABLE ${t.users} (
        id text COLLATE "C" PRIMARY KEY,
        username text COLLATE "C" NOT NULL UNIQUE,
        email text,
        name text,
        password_hash text NOT NULL,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL,
        disabled_at bigint,
        credentials_changed_at bigint NOT NULL
      );

      CREATE TABLE ${t.clients} (
        client_id text COLLATE "C" PRIMARY KEY,
        secret_hash text,
        token_endpoint_auth_method text NOT NULL,
        redirect_uris json NOT NULL CHECK (json_typeof(redirect_uris) = 'array'),
        grant_types json NOT NULL CHECK (json_typeof(grant_types) = 'array'),
        response_types json NOT NULL CHECK (json_typeof(response_types) = 'array'),
        application_type text NOT NULL,
        client_name text,
        client_uri text,
        logo_uri text,
        scope text,
        metadata json NOT NULL CHECK (json_typeof(metadata) = 'object'),
        created_at bigint NOT NULL,
        expires_at bigint
      );

      CREATE TABLE ${t.authorizationCodes} (
        code_hash text COLLATE "C" PRIMARY KEY,
        grant_id text NOT NULL,
        client_id text NOT NULL,
        redirect_uri text NOT NULL,
        code_challenge text NOT NULL,
        resource text NOT NULL,
        scopes json NOT NULL CHECK (json_typeof(scopes) = 'array'),
        principal json NOT NULL CHECK (json_typeof(principal) = 'object'),
        auth_time bigint NOT NULL,
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL,
        -- Set by the first consume; the row stays until it expires so that replays are recognised.
        consumed_at bigint
      );
      CREATE INDEX authorization_codes_expires_at_idx ON ${t.authorizationCodes} (expires_at);

      CREATE TABLE ${t.grants} (
        id text COLLATE "C" PRIMARY KEY,
        client_id text NOT NULL,
        -- 'idp#subject' of principal, for listByPrincipal and revokeByPrincipal.
        principal_key text COLLATE "C" NOT NULL,
        principal json NOT NULL CHECK (json_typeof(principal) = 'object'),
        scopes json NOT NULL CHECK (json_typeof(scopes) = 'array'),
        resource text NOT NULL,
        auth_time bigint NOT NULL,
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL,
        revoked_at bigint,
        generation integer NOT NULL,
        rotated_at bigint NOT NULL,
        grace_response text
      );
      CREATE INDEX grants_principal_key_idx ON ${t.grants} (principal_key, created_at);
      CREATE INDEX grants_expires_at_idx ON ${t.grants} (expires_at);

      -- Every refresh token a grant ever issued, so a reused old generation is recognised until the grant
      -- is swept; the sweep deletes a grant's tokens with it.
      CREATE TABLE ${t.refreshTokens} (
        token_hash text COLLATE "C" PRIMARY KEY,
        grant_id text COLLATE "C" NOT NULL REFERENCES ${t.grants} (id) ON DELETE CASCADE,
        generation integer NOT NULL,
        -- Also the index the cascade from grants needs.
        UNIQUE (grant_id, generation)
      );

      CREATE TABLE ${t.revocations} (
        kind text COLLATE "C" NOT NULL CHECK (kind IN ('grant', 'jti')),
        id text COLLATE "C" NOT NULL,
        revoked_at bigint NOT NULL,
        expires_at bigint NOT NULL,
        PRIMARY KEY (kind, id)
      );
      CREATE INDEX revocations_revoked_at_idx ON ${t.revocations} (revoked_at);
      CREATE INDEX revocations_expires_at_idx ON ${t.revocations} (expires_at);

      -- One row counting every revocation ever added, moved by a trigger in the transaction that adds the
      -- entry, so that no writer (the revocation port, a grant revoked with its entry, another process) can
      -- add an entry without moving it, and the new value becomes visible together with the entry. A
      -- sequence would not do: it moves before the entry commits, so a reader could see the new value,
      -- reload without the entry, and never look again. Unlike max() over the entries it never goes back
      -- when the sweep deletes the newest. An upsert that keeps an existing entry inserts no row and fires
      -- no trigger.
      CREATE TABLE ${t.revocationWatermark} (
        id integer PRIMARY KEY CHECK (id = 1),
        value bigint NOT NULL
      );
      INSERT INTO ${t.revocationWatermark} (id, value) VALUES (1, 0);
      -- The body finds the counter through the trigger's own schema, so it holds no schema name of its own.
      CREATE FUNCTION ${pg.escapeIdentifier(schema)}.revocations_move_watermark() RETURNS trigger
        LANGUAGE plpgsql AS $body$
        BEGIN
          EXECUTE format('UPDATE %I.revocation_watermark SET value = value + 1 WHERE id = 1', TG_TABLE_SCHEMA);
          RETURN NULL;
        END
        $body$;
      CREATE TRIGGER revocations_move_watermark AFTER INSERT ON ${t.revocations}
        FOR EACH ROW EXECUTE FUNCTION ${pg.escapeIdentifier(schema)}.revocations_move_watermark();

      -- The primary key serves get and listByPrincipal (ordered by client id).
      CREATE TABLE ${t.consents} (
        principal_key text COLLATE "C" NOT NULL,
        client_id text COLLATE "C" NOT NULL,
        scopes json NOT NULL CHECK (json_typeof(scopes) = 'array'),
        granted_at bigint NOT NULL,
        expires_at bigint NOT NULL,
        PRIMARY KEY (principal_key, client_id)
      );

      CREATE TABLE ${t.upstreamTokens} (
        principal_key text COLLATE "C" NOT NULL,
        provider text COLLATE "C" NOT NULL,
        ciphertext text NOT NULL,
        access_expires_at bigint,
        updated_at bigint NOT NULL,
        version integer NOT NULL,
        PRIMARY KEY (principal_key, provider)
      );

      CREATE TABLE ${t.signingKeys} (
        kid text COLLATE "C" PRIMARY KEY,
        alg text NOT NULL,
        public_jwk json NOT NULL CHECK (json_typeof(public_jwk) = 'object'),
        private_jwk_ciphertext text NOT NULL,
        created_at bigint NOT NULL,
        retires_at bigint NOT NULL,
        expires_at bigint NOT NULL
      );
      CREATE INDEX signing_keys_expires_at_idx ON ${t.signingKeys} (expires_at);

      CREATE TABLE ${t.ephemeralRecords} (
        namespace text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        value json NOT NULL CHECK (json_typeof(value) = 'object'),
        expires_at bigint NOT NULL,
        PRIMARY KEY (namespace, key)
      );
      CREATE INDEX ephemeral_records_expires_at_idx ON ${t.ephemeralRecords} (expires_at);

      CREATE TABLE ${t.counters} (
        key text COLLATE "C" PRIMARY KEY,
        count integer NOT NULL,
        reset_at bigint NOT NULL
      );
      CREATE INDEX counters_reset_at_idx ON ${t.counters} (reset_at);
    `,
  },
  {
    version: 2,
    name: 'rate limits',
    // The table `rate-limiter-flexible` reads and writes, created here so that nothing is created lazily
    // at run time: its columns, in its order (it inserts positionally), except that the key is `text`
    // rather than `varchar(255)`, so a long key (a principal with a long issuer URL) is counted rather
    // than refused. The index serves the sweep of expired windows.
    sql: (t) => `
      CREATE TABLE ${t.rateLimits} (
        key text COLLATE "C" PRIMARY KEY,
        points integer NOT NULL DEFAULT 0,
        expire bigint
      );
      CREATE INDEX rate_limits_expire_idx ON ${t.rateLimits} (expire);
    `,
  },
  {
    version: 3,
    name: 'operators: roles, client approval, listings, audit log',
    // Users stored before get no roles (the column's default; a constant default adds the column without
    // rewriting the table) and clients no approval. The listings of every session, grant and client page by
    // (created_at, id), which each new index serves in order. The audit log is read by time, by subject
    // and time, and by type (exact, or one range per type of a prefix) and time: each index ends in
    // (at, id), so a page is one index range in either direction, and retention deletes a prefix of the
    // time index.
    sql: (t) => `
      ALTER TABLE ${t.users} ADD COLUMN roles json NOT NULL DEFAULT '[]' CHECK (json_typeof(roles) = 'array');
      ALTER TABLE ${t.clients} ADD COLUMN approved_at bigint;

      CREATE INDEX sessions_created_at_idx ON ${t.sessions} (created_at, id);
      CREATE INDEX grants_created_at_idx ON ${t.grants} (created_at, id);
      CREATE INDEX clients_created_at_idx ON ${t.clients} (created_at, client_id);

      CREATE TABLE ${t.auditLog} (
        id text COLLATE "C" PRIMARY KEY,
        at bigint NOT NULL,
        type text COLLATE "C" NOT NULL,
        outcome text,
        subject text COLLATE "C",
        principal text,
        client_id text,
        request_id text,
        ip text,
        event json NOT NULL CHECK (json_typeof(event) = 'object')
      );
      CREATE INDEX audit_log_at_idx ON ${t.auditLog} (at, id);
      CREATE INDEX audit_log_subject_idx ON ${t.auditLog} (subject, at, id) WHERE subject IS NOT NULL;
      CREATE INDEX audit_log_type_idx ON ${t.auditLog} (type, at, id);
    `,
  },
];

/**
 * The longest one migration statement may run, in milliseconds, instead of the pool's 10 s: a step on a
 * large table, or the wait for the lock behind another instance migrating, may take minutes.
 */
const MIGRATION_TIMEOUT_MS = 10 * 60_000;

function assertWellFormed(migrations: readonly PostgresMigration[]): void {
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new Error(
        `PostgreSQL migration #${index} has version ${migration.version}; expected ${index + 1}.`,
      );
    }
  });
}

/** Applies what `migrations` has beyond the recorded version, inside the caller's transaction `tx`. */
async function applyPending(
  tx: Queryable,
  schema: string,
  migrations: readonly PostgresMigration[],
): Promise<number[]> {
  const tables = qualifiedTables(schema);
  // Checked before CREATE SCHEMA, which needs the CREATE privilege on the database even when the schema
  // exists: an operator may have created it for a role that has no such privilege.
  const existing = await tx.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
  if (existing.rowCount === 0) await tx.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(schema)}`);
  await tx.query(`
    CREATE TABLE IF NOT EXISTS ${tables.schemaMigrations} (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )
  `);
  const recorded = await tx.query<{ version: number | null }>(
    `SELECT max(version) AS version FROM ${tables.schemaMigrations}`,
  );
  const current = recorded.rows[0]?.version ?? 0;
  if (current > migrations.length) {
    throw new GatehouseError(
      'ERR_STORE_UNAVAILABLE',
      `The PostgreSQL schema "${schema}" has version ${current}, newer than this Gatehouse knows (${migrations.length}).`,
      { details: { schemaVersion: current, supportedVersion: migrations.length } },
    );
  }
  const applied: number[] = [];
  for (const migration of migrations.slice(current)) {
    await tx.query(migration.sql(tables, schema));
    await tx.query(`INSERT INTO ${tables.schemaMigrations} (version, name) VALUES ($1, $2)`, [
      migration.version,
      migration.name,
    ]);
    applied.push(migration.version);
  }
  return applied;
}

/**
 * Brings `schema` (created when missing) up to the newest version in `migrations` and returns the
 * versions it applied: empty when the schema was already current. Each run is one transaction holding
 * `pg_advisory_xact_lock` on a key derived from the schema name, taken before anything is read: instances
 * starting together queue on the lock, and each one after the first finds the migrations recorded and
 * applies nothing. A step that fails rolls back every step of the run. Statements of the run may take
 * minutes rather than the pool's 10 s. Versions are recorded in the schema's `schema_migrations` table
 * (version, name, applied_at).
 *
 * Throws `ERR_STORE_UNAVAILABLE` when the schema records a version newer than this code knows, so an older
 * Gatehouse never runs against a schema it does not understand, and when the server cannot be reached.
 *
 * @example
 * ```ts
 * const applied = await migratePostgres(pool, 'gatehouse'); // [1, 2, 3] on a new schema, [] afterwards
 * ```
 */
export async function migratePostgres(
  pool: Pool,
  schema: string,
  migrations: readonly PostgresMigration[] = POSTGRES_MIGRATIONS,
): Promise<number[]> {
  assertWellFormed(migrations);
  return inTransaction(
    pool,
    async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
        `gatehouse.migrate:${schema}`,
      ]);
      return applyPending(tx, schema, migrations);
    },
    { statementTimeoutMs: MIGRATION_TIMEOUT_MS },
  );
}
