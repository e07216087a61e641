import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPostgresAuthSchema } from '../../../src/downstream/postgres-auth-schema.js';
import { type RlsClaims, withServiceRole, withUserContext } from '../../../src/downstream/postgres-rls.js';
import { isGatehouseError } from '../../../src/errors/gatehouse-error.js';
import type { Principal } from '../../../src/identity/principal.js';
import {
  createRlsFixture,
  POSTGRES_SKIP_REASON,
  POSTGRES_URL,
  type RlsFixture,
} from '../../helpers/postgres-rls.js';

if (POSTGRES_URL === undefined) console.warn(`[postgres-rls] ${POSTGRES_SKIP_REASON}`);

const alice: Principal = {
  subject: 'usr_alice',
  issuer: 'https://gatehouse.test',
  email: 'alice@example.test',
  scopes: ['notes:write'],
  claims: {
    sub: 'usr_alice',
    iss: 'https://gatehouse.test',
    aud: 'https://gatehouse.test/mcp',
    role: 'admin', // an IdP's own role claim (WorkOS style): must not leak into auth.role()
    org_id: 'org_1',
  },
  expiresAt: 4_000_000_000,
  verifier: 'local',
};
const bob: RlsClaims = { sub: 'usr_bob', email: 'bob@example.test' };

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => 'resolved',
    (error: unknown) => error,
  );
}

describe.skipIf(POSTGRES_URL === undefined)(
  'Postgres row-level security as the user (real PostgreSQL)',
  () => {
    let fx: RlsFixture;
    let pool: pg.Pool;

    beforeAll(async () => {
      fx = await createRlsFixture(POSTGRES_URL as string);
      pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 3 });
    });
    afterAll(async () => {
      await pool?.end();
      await fx?.drop();
    });

    const list = (identity: Principal | RlsClaims) =>
      withUserContext(
        pool,
        identity,
        async (db) =>
          (
            await db.query<{ user_id: string; body: string }>(
              `SELECT user_id, body FROM ${fx.table} ORDER BY id`,
            )
          ).rows,
      );
    const add = (identity: Principal | RlsClaims, body: string) =>
      withUserContext(pool, identity, (db) => db.query(`INSERT INTO ${fx.table} (body) VALUES ($1)`, [body]));

    it('applies the auth migration idempotently: auth.uid() returns text', async () => {
      const again = await applyPostgresAuthSchema(pool);
      const thrice = await applyPostgresAuthSchema(pool);
      expect(again).toEqual({ outcome: 'installed', uidType: 'text' });
      expect(thrice).toEqual(again);
      const functions = await fx.admin.query<{ signature: string }>(
        `SELECT p.oid::regprocedure::text AS signature FROM pg_proc p
        WHERE p.pronamespace = 'auth'::regnamespace ORDER BY 1`,
      );
      expect(functions.rows.map((row) => row.signature)).toEqual([
        'auth.email()',
        'auth.jwt()',
        'auth.role()',
        'auth.uid()',
      ]);
      const roles = await fx.admin.query(
        `SELECT rolname FROM pg_roles WHERE rolname IN ('anon', 'authenticated') AND NOT rolcanlogin`,
      );
      expect(roles.rowCount).toBe(2);
    });

    it('leaves an existing (Supabase) auth.uid() untouched and reports its type', async () => {
      const database = `gh_rls_db_${randomBytes(4).toString('hex')}`;
      await fx.admin.query(`CREATE DATABASE ${database}`);
      const url = new URL(POSTGRES_URL as string);
      url.pathname = `/${database}`;
      const other = new pg.Client({ connectionString: url.href });
      try {
        await other.connect();
        const supabaseUid = `SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
          (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid`;
        await other.query(`CREATE SCHEMA auth; CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$ ${supabaseUid} $$;
         GRANT USAGE ON SCHEMA auth TO authenticated`);
        const result = await applyPostgresAuthSchema(other);
        expect(result).toEqual({ outcome: 'existing', uidType: 'uuid' });
        const left = await other.query<{ count: string }>(
          `SELECT count(*) FROM pg_proc WHERE pronamespace = 'auth'::regnamespace`,
        );
        expect(left.rows[0]?.count).toBe('1');
        const sub = '3f1c0a52-94d4-4c4e-9d0e-1e2a3b4c5d6e';
        const uid = await withUserContext(
          other,
          { sub },
          async (db) => (await db.query('SELECT auth.uid() AS uid')).rows[0],
        );
        expect(uid).toEqual({ uid: sub });
      } finally {
        await other.end().catch(() => undefined);
        await fx.admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      }
    });

    it('inside the user context auth.uid(), auth.jwt() and auth.role() are the user’s, as role authenticated', async () => {
      const seen = await withUserContext(pool, alice, async (db) => {
        const result = await db.query(
          `SELECT auth.uid() AS uid, auth.jwt() ->> 'email' AS email, auth.role() AS role, auth.email() AS email_fn,
                auth.jwt() ->> 'org_id' AS org, auth.jwt() ->> 'iss' AS iss, current_user AS db_role,
                current_setting('request.jwt.claim.sub') AS legacy_sub`,
        );
        return result.rows[0];
      });
      expect(seen).toEqual({
        uid: 'usr_alice',
        email: 'alice@example.test',
        role: 'authenticated',
        email_fn: 'alice@example.test',
        org: 'org_1',
        iss: 'https://gatehouse.test',
        db_role: 'authenticated',
        legacy_sub: 'usr_alice',
      });
    });

    it('shows each user only their own rows; the rows are all there', async () => {
      await add(alice, 'alice 1');
      await add(bob, 'bob 1');
      await add(alice, 'alice 2');
      expect(await list(alice)).toEqual([
        { user_id: 'usr_alice', body: 'alice 1' },
        { user_id: 'usr_alice', body: 'alice 2' },
      ]);
      expect(await list(bob)).toEqual([{ user_id: 'usr_bob', body: 'bob 1' }]);
      expect(await list({ sub: 'usr_carol' })).toEqual([]);
      const all = await fx.admin.query(`SELECT user_id FROM ${fx.table}`);
      expect(all.rowCount).toBe(3);
    });

    it('refuses a row inserted for another user (WITH CHECK)', async () => {
      const error = await rejection(
        withUserContext(pool, bob, (db) =>
          db.query(`INSERT INTO ${fx.table} (user_id, body) VALUES ($1, $2)`, ['usr_alice', 'forged by bob']),
        ),
      );
      expect((error as { code?: string }).code).toBe('42501');
      const forged = await fx.admin.query(`SELECT 1 FROM ${fx.table} WHERE body = 'forged by bob'`);
      expect(forged.rowCount).toBe(0);
    });

    it('a query without a user context sees nothing', async () => {
      await add(alice, 'visible to alice only');
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        await client.query('SET ROLE authenticated');
        expect((await client.query('SELECT auth.uid() AS uid')).rows[0]).toEqual({ uid: null });
        expect((await client.query(`SELECT * FROM ${fx.table}`)).rowCount).toBe(0);
        await client.query('SET ROLE anon');
        expect((await client.query(`SELECT * FROM ${fx.table}`)).rowCount).toBe(0);
        await client.query('RESET ROLE');
        expect((await fx.admin.query(`SELECT * FROM ${fx.table}`)).rowCount).toBeGreaterThan(0);
      } finally {
        await client.end();
      }
    });

    it('ends the role and the claims with the transaction, so a reused connection carries no identity', async () => {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        await withUserContext(client, alice, (db) => db.query('SELECT 1'));
        const after = await client.query(
          `SELECT current_user AS db_role, auth.uid() AS uid, auth.jwt() AS jwt, current_setting('role') AS role`,
        );
        expect(after.rows[0]).toEqual({ db_role: 'postgres', uid: null, jwt: null, role: 'none' });
      } finally {
        await client.end();
      }
    });

    it('rolls back when the function throws, re-throws the error, and releases the connection', async () => {
      const boom = new Error('boom');
      const error = await rejection(
        withUserContext(pool, alice, async (db) => {
          await db.query(`INSERT INTO ${fx.table} (body) VALUES ('rolled back')`);
          throw boom;
        }),
      );
      expect(error).toBe(boom);
      expect((await fx.admin.query(`SELECT 1 FROM ${fx.table} WHERE body = 'rolled back'`)).rowCount).toBe(0);
      expect(pool.idleCount).toBe(pool.totalCount);
      expect(pool.waitingCount).toBe(0);
    });

    it('keeps users apart under interleaved concurrent use of one small pool', async () => {
      const users = [alice, bob] as const;
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => {
          const user = users[i % 2] as Principal | RlsClaims;
          return withUserContext(pool, user, async (db) => {
            const { rows } = await db.query<{ uid: string }>('SELECT pg_sleep(0.001), auth.uid() AS uid');
            const owners = await db.query<{ user_id: string }>(`SELECT DISTINCT user_id FROM ${fx.table}`);
            return { uid: rows[0]?.uid, owners: owners.rows.map((row) => row.user_id) };
          });
        }),
      );
      results.forEach((result, i) => {
        const sub = i % 2 === 0 ? 'usr_alice' : 'usr_bob';
        expect(result.uid).toBe(sub);
        expect(result.owners).toEqual([sub]);
      });
    });

    it('treats quotes and SQL in claims as data', async () => {
      const nasty: RlsClaims = {
        sub: `x'); DROP TABLE ${fx.table}; --`,
        email: `"o'hara"@example.test\\`,
        note: `'; RESET ROLE; SELECT '`,
      };
      await add(nasty, 'nasty');
      const seen = await withUserContext(pool, nasty, async (db) => ({
        rows: (await db.query(`SELECT user_id, body FROM ${fx.table}`)).rows,
        email: (await db.query(`SELECT auth.jwt() ->> 'email' AS email, current_user AS db_role`)).rows[0],
      }));
      expect(seen.rows).toEqual([{ user_id: nasty.sub, body: 'nasty' }]);
      expect(seen.email).toEqual({ email: nasty.email, db_role: 'authenticated' });
      expect(await list({ sub: `' OR '1'='1` })).toEqual([]);
      expect((await fx.admin.query(`SELECT count(*)::int AS n FROM ${fx.table}`)).rows[0]?.n).toBeGreaterThan(
        3,
      );
    });

    it('refuses a role that bypasses RLS, and an empty subject, before running the function', async () => {
      let ran = false;
      const run = async () => {
        ran = true;
      };
      const superuser = await rejection(withUserContext(pool, alice, run, { role: 'postgres' }));
      expect(isGatehouseError(superuser, 'ERR_CONFIG_INVALID')).toBe(true);
      const none = await rejection(withUserContext(pool, alice, run, { role: 'none' }));
      expect(isGatehouseError(none, 'ERR_CONFIG_INVALID')).toBe(true);
      const injected = await rejection(
        withUserContext(pool, alice, run, { role: 'authenticated; RESET ROLE' }),
      );
      expect(isGatehouseError(injected, 'ERR_CONFIG_INVALID')).toBe(true);
      const empty = await rejection(withUserContext(pool, { sub: ' ' }, run));
      expect(isGatehouseError(empty, 'ERR_BAD_REQUEST')).toBe(true);
      expect(ran).toBe(false);
      expect(pool.idleCount).toBe(pool.totalCount);
    });

    it('the service-role path carries no user identity', async () => {
      const asService = await withServiceRole(
        pool,
        async (db) =>
          (await db.query('SELECT auth.uid() AS uid, auth.jwt() AS jwt, current_user AS db_role')).rows[0],
      );
      expect(asService).toEqual({ uid: null, jwt: null, db_role: 'postgres' });
      const switched = await withServiceRole(
        pool,
        async (db) => ({
          who: (await db.query('SELECT current_user AS db_role, auth.uid() AS uid')).rows[0],
          rows: (await db.query(`SELECT * FROM ${fx.table}`)).rowCount,
        }),
        { role: 'authenticated' },
      );
      expect(switched).toEqual({ who: { db_role: 'authenticated', uid: null }, rows: 0 });
    });
  },
);
