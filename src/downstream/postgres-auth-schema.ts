import type { ClientBase } from 'pg';
import { type PostgresConnection, runInTransaction } from './postgres-transaction.js';

/** Marks the functions Gatehouse installed, so a later run replaces its own and never someone else's. */
const GATEHOUSE_MARK = 'gatehouse auth schema v1';

/** Serialises concurrent migrations (two instances starting at once) on one database. */
const MIGRATION_LOCK_KEY = 0x6761_7465; // 'gate'

/**
 * The functions, read from the settings `withUserContext` makes transaction-local. Supabase reads
 * `request.jwt.claim.sub` before `request.jwt.claims` (older PostgREST set one setting per claim); so do
 * these. An empty setting counts as absent, and an empty `sub` is null, so a row whose `user_id` is `''`
 * never matches a caller without identity.
 *
 * `auth.uid()` returns **text**, unlike Supabase's uuid: Gatehouse subjects are whatever the verifier
 * accepted (`usr_…` local accounts, `user_…` from WorkOS, `auth0|…`), and a uuid cast would throw on
 * every one of them. Tables guarded by `auth.uid() = user_id` therefore use `user_id text`.
 */
const FUNCTIONS_SQL = `
CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb
  LANGUAGE sql STABLE
  AS $fn$
    SELECT coalesce(
      nullif(current_setting('request.jwt.claim', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
  $fn$;
CREATE OR REPLACE FUNCTION auth.uid() RETURNS text
  LANGUAGE sql STABLE
  AS $fn$
    SELECT nullif(coalesce(
      nullif(current_setting('request.jwt.claim.sub', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
    ), '')
  $fn$;
CREATE OR REPLACE FUNCTION auth.role() RETURNS text
  LANGUAGE sql STABLE
  AS $fn$
    SELECT nullif(coalesce(
      nullif(current_setting('request.jwt.claim.role', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'
    ), '')
  $fn$;
CREATE OR REPLACE FUNCTION auth.email() RETURNS text
  LANGUAGE sql STABLE
  AS $fn$
    SELECT nullif(coalesce(
      nullif(current_setting('request.jwt.claim.email', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email'
    ), '')
  $fn$;
COMMENT ON FUNCTION auth.jwt() IS '${GATEHOUSE_MARK}: the request''s verified claims';
COMMENT ON FUNCTION auth.uid() IS '${GATEHOUSE_MARK}: the request''s subject (text)';
COMMENT ON FUNCTION auth.role() IS '${GATEHOUSE_MARK}: the request''s role claim';
COMMENT ON FUNCTION auth.email() IS '${GATEHOUSE_MARK}: the request''s email claim';
GRANT USAGE ON SCHEMA auth TO anon, authenticated;
GRANT EXECUTE ON FUNCTION auth.jwt(), auth.uid(), auth.role(), auth.email() TO anon, authenticated;
`;

/** Creates each role when absent and lets the connecting login role switch to it (`SET ROLE`). */
const ROLES_SQL = `
DO $roles$
DECLARE
  name text;
BEGIN
  FOREACH name IN ARRAY ARRAY['anon', 'authenticated'] LOOP
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = name) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', name);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL; -- created meanwhile by another database's migration (roles are cluster-wide)
      END;
    END IF;
    IF NOT pg_catalog.pg_has_role(current_user, name, 'MEMBER') THEN
      EXECUTE format('GRANT %I TO %I', name, current_user);
    END IF;
  END LOOP;
END
$roles$;
`;

export interface PostgresAuthSchemaResult {
  /**
   * `installed`: Gatehouse's `auth.uid()`, `auth.jwt()`, `auth.role()` and `auth.email()` are in place
   * (created, or replaced by this version). `existing`: another `auth.uid()` was found — a Supabase
   * project's, typically — and the `auth` schema was left untouched.
   */
  readonly outcome: 'installed' | 'existing';
  /** What `auth.uid()` returns (`text` when installed; `uuid` on Supabase): the type `user_id` columns need. */
  readonly uidType: string;
}

/**
 * Gives a plain Postgres what Supabase's row-level security policies expect: the `auth` schema with
 * `auth.uid()`, `auth.jwt()`, `auth.role()` and `auth.email()` reading the claims {@link withUserContext}
 * sets, and the NOLOGIN roles `anon` and `authenticated` (granted to the connecting role so it can switch
 * to them). Idempotent and safe to run at every start, also from several instances at once (an advisory
 * lock serialises them). When an `auth.uid()` that Gatehouse did not create exists — a Supabase
 * database — the `auth` schema is not touched; only missing roles are added.
 *
 * Needs a role allowed to create schemas, functions and roles (the database owner, say).
 *
 * @example
 * ```ts
 * const { uidType } = await applyPostgresAuthSchema(pool); // 'text' on plain Postgres
 * await pool.query(`create table notes (id serial primary key, user_id ${uidType} not null default auth.uid(), body text)`);
 * await pool.query(`create policy own_notes on notes using (auth.uid() = user_id) with check (auth.uid() = user_id)`);
 * ```
 */
export async function applyPostgresAuthSchema(db: PostgresConnection): Promise<PostgresAuthSchemaResult> {
  return runInTransaction(
    db,
    async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    },
    async (client) => {
      await client.query(ROLES_SQL);
      const found = await findUid(client);
      if (found !== undefined && !found.comment.startsWith(GATEHOUSE_MARK)) {
        return { outcome: 'existing', uidType: found.returns };
      }
      await client.query('CREATE SCHEMA IF NOT EXISTS auth');
      await client.query(FUNCTIONS_SQL);
      return { outcome: 'installed', uidType: 'text' };
    },
  );
}

async function findUid(client: ClientBase): Promise<{ comment: string; returns: string } | undefined> {
  const result = await client.query<{ comment: string | null; returns: string }>(
    `SELECT pg_catalog.obj_description(p.oid, 'pg_proc') AS comment,
            pg_catalog.format_type(p.prorettype, NULL) AS returns
       FROM pg_catalog.pg_proc p
       JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = 'auth' AND p.proname = 'uid' AND p.pronargs = 0`,
  );
  const row = result.rows[0];
  return row === undefined ? undefined : { comment: row.comment ?? '', returns: row.returns };
}
