import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { applyPostgresAuthSchema } from '../../src/downstream/postgres-auth-schema.js';

/** The real PostgreSQL CI provides; suites that need it skip, visibly, without it. */
export const POSTGRES_URL = process.env.GATEHOUSE_TEST_POSTGRES_URL;
export const POSTGRES_SKIP_REASON =
  'GATEHOUSE_TEST_POSTGRES_URL is not set: skipped the real-PostgreSQL RLS tests';

export interface RlsFixture {
  /** A superuser (RLS-exempt) pool, to set up and to check what is really stored. */
  readonly admin: pg.Pool;
  /** The per-run schema; dropped by `drop()`. */
  readonly schema: string;
  /** `<schema>.notes`, quoted. */
  readonly table: string;
  drop(): Promise<void>;
}

/**
 * Applies the auth migration and creates a uniquely named schema holding `notes` with RLS on and the
 * policy `auth.uid() = user_id` for select and insert. Shared roles (`anon`, `authenticated`) are created
 * idempotently by the migration and never dropped: other runs on the cluster may be using them.
 */
export async function createRlsFixture(url: string): Promise<RlsFixture> {
  const admin = new pg.Pool({ connectionString: url, max: 4 });
  const schema = `gh_rls_${process.pid}_${randomBytes(4).toString('hex')}`;
  const s = pg.escapeIdentifier(schema);
  const table = `${s}.notes`;
  await applyPostgresAuthSchema(admin);
  await admin.query(`CREATE SCHEMA ${s}`);
  await admin.query(`
    CREATE TABLE ${table} (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      user_id text NOT NULL DEFAULT auth.uid(),
      body text NOT NULL
    );
    ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY;
    CREATE POLICY notes_select_own ON ${table} FOR SELECT TO authenticated USING (auth.uid() = user_id);
    CREATE POLICY notes_insert_own ON ${table} FOR INSERT TO authenticated WITH CHECK (auth.uid() = user_id);
    GRANT USAGE ON SCHEMA ${s} TO anon, authenticated;
    GRANT SELECT, INSERT ON ${table} TO anon, authenticated;
  `);
  return {
    admin,
    schema,
    table,
    async drop() {
      await admin.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      await admin.end();
    },
  };
}
