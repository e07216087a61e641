import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { POSTGRES_URL } from '../contract/engines.js';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/late-server.js';

/** `gatehouse migrate`, run as the real binary, on each kind of store. */
describe('gatehouse migrate', () => {
  const dirs: string[] = [];
  const dir = () => {
    const made = mkdtempSync(join(tmpdir(), 'gatehouse-migrate-'));
    dirs.push(made);
    return made;
  };
  afterAll(() => {
    for (const made of dirs) rmSync(made, { recursive: true, force: true });
  });

  it('creates and migrates the SQLite database, and says so', async () => {
    const cwd = dir();
    const result = await runCli(['migrate', '--data-dir', join(cwd, 'data')], cwd, cleanEnv());

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/sqlite store at .*gatehouse\.db: schema up to date/);
    expect(existsSync(join(cwd, 'data', 'gatehouse.db'))).toBe(true);
  });

  it('says there is nothing to migrate for Redis', async () => {
    const cwd = dir();
    const env = cleanEnv({ GATEHOUSE_STORE__KIND: 'redis', GATEHOUSE_STORE__URL: 'redis://127.0.0.1:1/0' });
    const result = await runCli(['migrate'], cwd, env);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain('nothing to migrate');
  });

  it('fails with exit 1 and a clear message, never the password, when PostgreSQL cannot be reached', async () => {
    const cwd = dir();
    const port = await freePort();
    const env = cleanEnv({
      GATEHOUSE_STORE__KIND: 'postgres',
      GATEHOUSE_STORE__URL: `postgres://gatehouse:pg-Passw0rd-do-not-print@127.0.0.1:${port}/gatehouse`,
    });
    const result = await runCli(['migrate'], cwd, env);

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/PostgreSQL/);
    expect(result.stdout + result.stderr).not.toContain('pg-Passw0rd-do-not-print');
  });

  (POSTGRES_URL === undefined ? it.skip : it)(
    'migrates a PostgreSQL schema, and running it again changes nothing',
    async () => {
      const cwd = dir();
      const schema = `gh_migrate_${randomBytes(4).toString('hex')}`;
      const env = cleanEnv({
        GATEHOUSE_STORE__KIND: 'postgres',
        GATEHOUSE_STORE__URL: POSTGRES_URL as string,
        GATEHOUSE_STORE__SCHEMA: schema,
      });
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        const first = await runCli(['migrate'], cwd, env);
        expect(first.code, first.stderr).toBe(0);
        expect(first.stdout).toContain(`(schema ${schema}): schema up to date`);
        const tables = async () =>
          (
            await client.query<{ table_name: string }>(
              'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
              [schema],
            )
          ).rows.map((row) => row.table_name);
        const created = await tables();
        expect(created).toEqual(expect.arrayContaining(['sessions', 'users', 'grants']));

        const second = await runCli(['migrate'], cwd, env);
        expect(second.code, second.stderr).toBe(0);
        expect(await tables()).toEqual(created);
      } finally {
        await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
        await client.end();
      }
    },
    60_000,
  );
});
