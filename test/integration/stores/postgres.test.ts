import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { GatehouseError, isGatehouseError } from '../../../src/errors/gatehouse-error.js';
import type { ClusterBus, ClusterMessage, SessionRecord, Stores } from '../../../src/stores/ports.js';
import { busChannel } from '../../../src/stores/postgres/bus.js';
import {
  createPostgresStores,
  migratePostgres,
  POSTGRES_MIGRATIONS,
} from '../../../src/stores/postgres/index.js';
import { storeError } from '../../../src/stores/postgres/store-error.js';
import { qualifiedTables } from '../../../src/stores/postgres/tables.js';
import { auditLateralSql, auditSelectSql } from '../../../src/stores/sql-audit.js';
import { POSTGRES_URL } from '../../contract/engines.js';
import { freePort } from '../../helpers/late-server.js';
import { eventually } from '../../helpers/wait.js';

if (POSTGRES_URL === undefined)
  console.warn('[postgres] GATEHOUSE_TEST_POSTGRES_URL is not set: skipped the PostgreSQL tests');

/** January 2026: epoch milliseconds well beyond 32 bits, as every stored time is. */
const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;
/** How fast opening stores on a closed port must fail: nothing listens, nothing may wait. */
const FAIL_FAST_MS = 5_000;
/** What the migrations create, besides the migrations table itself. */
const TABLES = [
  'audit_log',
  'authorization_codes',
  'clients',
  'consents',
  'counters',
  'ephemeral_records',
  'grants',
  'rate_limits',
  'refresh_tokens',
  'revocation_watermark',
  'revocations',
  'schema_migrations',
  'sessions',
  'signing_keys',
  'upstream_tokens',
  'users',
];

function isUnavailable(error: unknown): boolean {
  return isGatehouseError(error, 'ERR_STORE_UNAVAILABLE');
}

function sessionRecord(overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id: `sess-${randomUUID()}`,
    principalKey: `local#${randomUUID()}`,
    kind: 'streamable-http',
    createdAt: T0,
    lastSeenAt: T0,
    idleTimeoutMs: HOUR,
    idleExpiresAt: T0 + HOUR,
    absoluteExpiresAt: T0 + 8 * HOUR,
    version: 1,
    data: { protocolVersion: '2025-06-18' },
    ...overrides,
  };
}

/** A server error as `pg` reports it, with SQLSTATE `code`. */
function serverError(code: string): pg.DatabaseError {
  const error = new pg.DatabaseError('server says no', 0, 'error');
  error.code = code;
  return error;
}

/** A socket error as Node reports it. */
function socketError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code, syscall: 'connect' });
}

describe('PostgreSQL store errors', () => {
  it.each([
    ['a refused connection', socketError('ECONNREFUSED'), 'ECONNREFUSED'],
    ['a reset connection', socketError('ECONNRESET'), 'ECONNRESET'],
    ['every address refused', new AggregateError([socketError('ECONNREFUSED')]), 'ECONNREFUSED'],
    ['a lost connection', new Error('Connection terminated unexpectedly'), 'connection'],
    ['a pool wait that timed out', new Error('timeout exceeded when trying to connect'), 'connection'],
    ['a query that timed out', new Error('Query read timeout'), 'connection'],
    ['a server shutting down', serverError('57P01'), '57P01'],
    ['a server starting up', serverError('57P03'), '57P03'],
    ['a statement timeout', serverError('57014'), '57014'],
    ['a connection failure', serverError('08006'), '08006'],
    ['too many connections', serverError('53300'), '53300'],
    ['refused credentials', serverError('28P01'), '28P01'],
  ])('maps %s to ERR_STORE_UNAVAILABLE, keeping the cause', (_, cause, reason) => {
    const mapped = storeError(cause);

    expect(isGatehouseError(mapped, 'ERR_STORE_UNAVAILABLE')).toBe(true);
    expect((mapped as GatehouseError).cause).toBe(cause);
    expect((mapped as GatehouseError).details).toEqual({ reason });
  });

  it.each([
    ['a unique violation', serverError('23505')],
    ['a check violation', serverError('23514')],
    ['a missing table', serverError('42P01')],
    ['a programming error', new TypeError('not a function')],
    ['an answer of the port', new GatehouseError('ERR_SESSION_CONFLICT', 'taken')],
  ])('passes %s through unchanged', (_, error) => {
    expect(storeError(error)).toBe(error);
  });
});

describe.skipIf(POSTGRES_URL === undefined)('PostgreSQL stores beyond the contracts', () => {
  const url = POSTGRES_URL as string;
  const admin = new pg.Pool({ connectionString: url, max: 2 });
  const schemas: string[] = [];
  const opened: Stores[] = [];
  const pools: pg.Pool[] = [];

  /** A schema name no other test uses; dropped after the suite. */
  const freshSchema = (name = 'gh_it'): string => {
    const schema = `${name}_${process.pid}_${randomBytes(4).toString('hex')}`;
    schemas.push(schema);
    return schema;
  };
  const pool = (): pg.Pool => {
    const made = new pg.Pool({ connectionString: url, max: 2 });
    pools.push(made);
    return made;
  };
  const open = async (schema: string): Promise<Stores> => {
    const stores = await createPostgresStores({ url, schema, max: 2 });
    opened.push(stores);
    return stores;
  };
  const tablesOf = async (schema: string): Promise<string[]> =>
    (
      await admin.query<{ table_name: string }>(
        'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
        [schema],
      )
    ).rows.map((row) => row.table_name);
  const versionsOf = async (schema: string): Promise<{ version: number; name: string }[]> =>
    (
      await admin.query<{ version: number; name: string }>(
        `SELECT version, name FROM ${pg.escapeIdentifier(schema)}.schema_migrations ORDER BY version`,
      )
    ).rows;

  afterAll(async () => {
    for (const stores of opened) await stores.close();
    for (const made of pools) await made.end();
    for (const schema of schemas)
      await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
    await admin.end();
  });

  describe('migrations', () => {
    it('are idempotent: a second run applies nothing and leaves the same version', async () => {
      const schema = freshSchema();
      const migrating = pool();

      expect(await migratePostgres(migrating, schema)).toEqual(POSTGRES_MIGRATIONS.map((m) => m.version));
      const tables = await tablesOf(schema);
      expect(await migratePostgres(migrating, schema)).toEqual([]);

      expect(tables).toEqual(TABLES);
      expect(await tablesOf(schema)).toEqual(tables);
      expect(await versionsOf(schema)).toEqual(
        POSTGRES_MIGRATIONS.map(({ version, name }) => ({ version, name })),
      );
      // Stores opened on the migrated schema migrate nothing more and work.
      const stores = await open(schema);
      expect(await stores.sessions.create(sessionRecord(), { max: 1 }, T0)).toMatchObject({ created: true });
      expect(await versionsOf(schema)).toHaveLength(POSTGRES_MIGRATIONS.length);
    });

    it('serialise on the advisory lock when several pools migrate one fresh schema at once', async () => {
      const schema = freshSchema();

      const results = await Promise.all(
        [pool(), pool(), pool()].map((each) => migratePostgres(each, schema)),
      );

      // Exactly one run applied everything; the others waited and found it done.
      expect(results.filter((applied) => applied.length > 0)).toEqual([
        POSTGRES_MIGRATIONS.map((m) => m.version),
      ]);
      expect(results.filter((applied) => applied.length === 0)).toHaveLength(2);
      expect(await tablesOf(schema)).toEqual(TABLES);
      expect(await versionsOf(schema)).toHaveLength(POSTGRES_MIGRATIONS.length);
    });

    it('let several stores open one fresh schema at once', async () => {
      const schema = freshSchema();

      const [first, second] = await Promise.all([open(schema), open(schema)]);

      await first?.users.create({
        id: 'u1',
        username: 'alice',
        passwordHash: 'h',
        createdAt: T0,
        updatedAt: T0,
        credentialsChangedAt: T0,
        roles: [],
      });
      expect((await second?.users.findByUsername('alice'))?.id).toBe('u1');
    });

    it('refuse a schema whose recorded version is newer than this code knows, changing nothing', async () => {
      const schema = freshSchema();
      const migrating = pool();
      await migratePostgres(migrating, schema);
      const future = POSTGRES_MIGRATIONS.length + 5;
      await admin.query(
        `INSERT INTO ${pg.escapeIdentifier(schema)}.schema_migrations (version, name) VALUES ($1, 'from the future')`,
        [future],
      );

      const refused = await migratePostgres(migrating, schema).catch((error: unknown) => error);
      expect(isUnavailable(refused)).toBe(true);
      expect((refused as { details?: unknown }).details).toEqual({
        schemaVersion: future,
        supportedVersion: POSTGRES_MIGRATIONS.length,
      });
      await expect(createPostgresStores({ url, schema, max: 1 })).rejects.toSatisfy(isUnavailable);
      expect(await versionsOf(schema)).toHaveLength(POSTGRES_MIGRATIONS.length + 1);
    });

    it('upgrade a version 2 schema keeping its rows: users get no roles, clients no approval', async () => {
      const schema = freshSchema();
      const migrating = pool();
      expect(await migratePostgres(migrating, schema, POSTGRES_MIGRATIONS.slice(0, 2))).toEqual([1, 2]);
      const s = pg.escapeIdentifier(schema);
      await admin.query(
        `INSERT INTO ${s}.users (id, username, email, name, password_hash, created_at, updated_at, disabled_at,
           credentials_changed_at) VALUES ('u1', 'alice', NULL, 'Alice', 'h', $1, $2, NULL, $2)`,
        [T0, T0 + HOUR],
      );
      await admin.query(
        `INSERT INTO ${s}.clients (client_id, secret_hash, token_endpoint_auth_method, redirect_uris, grant_types,
           response_types, application_type, client_name, client_uri, logo_uri, scope, metadata, created_at,
           expires_at)
         VALUES ('c1', NULL, 'none', '["http://127.0.0.1/cb"]', '["authorization_code"]', '["code"]', 'native',
           NULL, NULL, NULL, NULL, '{}', $1, NULL)`,
        [T0],
      );

      expect(await migratePostgres(migrating, schema)).toEqual(
        POSTGRES_MIGRATIONS.slice(2).map((migration) => migration.version),
      );

      const stores = await open(schema);
      const alice = {
        id: 'u1',
        username: 'alice',
        name: 'Alice',
        passwordHash: 'h',
        createdAt: T0,
        updatedAt: T0 + HOUR,
        credentialsChangedAt: T0 + HOUR,
        roles: [],
      };
      expect(await stores.users.get('u1')).toStrictEqual(alice);
      expect(await stores.users.setRoles('u1', ['admin'], T0 + 2 * HOUR)).toStrictEqual({
        ...alice,
        roles: ['admin'],
        updatedAt: T0 + 2 * HOUR,
      });
      const client = await stores.clients.get('c1', T0);
      expect(client).not.toHaveProperty('approvedAt');
      expect(await stores.clients.list(T0, { limit: 5 })).toStrictEqual([client]);
      expect(await tablesOf(schema)).toEqual(TABLES);
    });

    it('give every audit query shape and listing an index range (no sequential scan)', async () => {
      const schema = freshSchema();
      await open(schema);
      const t = qualifiedTables(schema);
      const client = await admin.connect();
      try {
        await client.query('BEGIN');
        // On an empty table any plan is cheap; this asks whether an index can serve the query, in order, at
        // all: with scans, bitmaps and sorts priced out, a plan keeps one only when nothing else can.
        await client.query('SET LOCAL enable_seqscan = off');
        await client.query('SET LOCAL enable_bitmapscan = off');
        await client.query('SET LOCAL enable_sort = off');
        const plan = async (sql: string, values: unknown[]): Promise<string> =>
          (await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, values)).rows
            .map((row) => row['QUERY PLAN'])
            .join('\n');
        const audit = (query: Parameters<typeof auditSelectSql>[1], merge = false): Promise<string> => {
          const values: unknown[] = [];
          const bind = (value: string | number): string => {
            values.push(value);
            return `$${values.length}`;
          };
          return plan(
            merge ? auditLateralSql(t.auditLog, query, bind) : auditSelectSql(t.auditLog, query, bind),
            values,
          );
        };
        const after = { at: T0, id: '0001767225600000-x' };
        const ordered = [
          await audit({ order: 'desc', limit: 50 }),
          await audit({ order: 'asc', limit: 50, since: T0, until: T0 + HOUR }),
          await audit({ order: 'asc', limit: 50, after }),
          await audit({ order: 'desc', limit: 50, subject: 'u1' }),
          await audit({ order: 'asc', limit: 50, subject: 'u1', since: T0, after }),
          await audit({ order: 'desc', limit: 50, type: 'login' }),
          await audit({ order: 'asc', limit: 50, type: 'login', after }),
          await plan(
            `SELECT * FROM ${t.sessions} WHERE (created_at, id) > ($1, $2) ORDER BY created_at, id LIMIT 5`,
            [T0, 'a'],
          ),
          await plan(
            `SELECT * FROM ${t.grants} WHERE (created_at, id) > ($1, $2) ORDER BY created_at, id LIMIT 5`,
            [T0, 'a'],
          ),
          await plan(
            `SELECT * FROM ${t.clients} WHERE (created_at, client_id) > ($1, $2) ORDER BY created_at, client_id LIMIT 5`,
            [T0, 'a'],
          ),
        ];
        for (const detail of ordered) {
          expect(detail).toMatch(/Index Scan/);
          expect(detail).not.toMatch(/Seq Scan|Sort/);
        }
        const merged = await audit({ order: 'desc', limit: 50, type: 'oauth.token.', until: T0 }, true);
        expect(merged).toMatch(/audit_log_type_idx/);
        expect(merged).not.toMatch(/Seq Scan/);
        await client.query('ROLLBACK');
      } finally {
        client.release();
      }
    });

    it('are skipped with migrate: false, which creates nothing', async () => {
      const schema = freshSchema();
      const bare = await createPostgresStores({ url, schema, migrate: false, max: 1 });
      opened.push(bare);

      expect(await tablesOf(schema)).toEqual([]);
      // Without tables the statement fails; it is not an outage, so it is not reported as one.
      const failure = await bare.users.get('u1').catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(pg.DatabaseError);
    });
  });

  describe('types', () => {
    it('reads every bigint back as a JS number, without changing pg.types for the process', async () => {
      const stores = await open(freshSchema());
      const record = sessionRecord();
      await stores.sessions.create(record, { max: 5 }, T0);
      await stores.revocations.add({ kind: 'jti', id: 'j1', revokedAt: T0, expiresAt: T0 + HOUR });

      const stored = await stores.sessions.get(record.id, T0);
      expect(stored).toEqual(record);
      for (const field of [
        'createdAt',
        'lastSeenAt',
        'idleTimeoutMs',
        'idleExpiresAt',
        'absoluteExpiresAt',
      ] as const) {
        expect(typeof stored?.[field]).toBe('number');
      }
      expect(typeof (await stores.revocations.watermark())).toBe('number');
      expect((await stores.counters.increment('k', HOUR, T0)).resetAt).toBe(T0 + HOUR);
      // Other code in the process still gets pg's default: int8 as a string.
      const { rows } = await admin.query<{ big: unknown }>('SELECT $1::int8 AS big', [T0]);
      expect(rows[0]?.big).toBe(String(T0));
    });

    it('works on a pool the caller owns, whose types it leaves alone, and leaves that pool open on close', async () => {
      const owned = pool();
      const stores = await createPostgresStores({ pool: owned, schema: freshSchema() });
      const record = sessionRecord();
      await stores.sessions.create(record, { max: 5 }, T0);
      expect(await stores.sessions.get(record.id, T0)).toEqual(record);

      await stores.close();
      await stores.close();

      expect((await owned.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await expect(stores.sessions.get(record.id, T0)).rejects.toSatisfy(isUnavailable);
      expect(owned.listenerCount('error')).toBe(0);
    });
  });

  describe('schema names', () => {
    it('quotes any schema name, in the tables, the rate limiter and the bus channel', async () => {
      // Quotes, spaces, upper case, and 63 bytes: the channel name must be hashed to fit.
      const base = `gh "Odd" Schema ${randomBytes(4).toString('hex')} `;
      const schema = base.padEnd(63, 'x');
      schemas.push(schema);
      expect(Buffer.byteLength(schema)).toBe(63);
      const stores = await open(schema);

      const limiter = stores.rateLimiter({ points: 1, durationSeconds: 60, keyPrefix: 'odd' });
      expect(await limiter.consume('k')).toEqual({ allowed: true });
      expect((await limiter.consume('k')).allowed).toBe(false);
      const record = sessionRecord();
      await stores.sessions.create(record, { max: 1 }, T0);
      expect(await stores.sessions.get(record.id, T0)).toEqual(record);
      const received: ClusterMessage[] = [];
      stores.bus?.subscribe((message) => received.push(message));
      await stores.bus?.publish({ type: 'revocations.changed' });
      await eventually(() => received.length === 1, 10_000);
      expect(await tablesOf(schema)).toEqual(TABLES);
    });

    it('refuses a schema name PostgreSQL would cut', async () => {
      await expect(createPostgresStores({ url, schema: 'x'.repeat(64) })).rejects.toBeInstanceOf(RangeError);
      await expect(createPostgresStores({ url, schema: '' })).rejects.toBeInstanceOf(RangeError);
    });
  });

  describe('errors', () => {
    it('fails fast with ERR_STORE_UNAVAILABLE when nothing listens at the URL', async () => {
      const port = await freePort();
      for (const migrate of [true, false]) {
        const started = Date.now();
        const failure = await createPostgresStores({
          url: `postgres://gatehouse:secret-password@127.0.0.1:${port}/gatehouse`,
          migrate,
        }).catch((error: unknown) => error);

        expect(isUnavailable(failure)).toBe(true);
        expect(Date.now() - started).toBeLessThan(FAIL_FAST_MS);
        expect(JSON.stringify((failure as { details?: unknown }).details)).not.toContain('secret-password');
      }
    });

    it('passes a constraint violation through unchanged: a broken invariant, not an outage', async () => {
      const stores = await open(freshSchema());
      const code = {
        codeHash: 'hash-1',
        grantId: 'g',
        clientId: 'c',
        redirectUri: 'https://app.example.test/cb',
        codeChallenge: 'x',
        resource: 'https://mcp.example.test/mcp',
        scopes: [],
        principal: { subject: 's', idp: 'local' },
        authTime: T0,
        createdAt: T0,
        expiresAt: T0 + HOUR,
      };
      await stores.codes.create(code);

      const failure = await stores.codes.create(code).catch((error: unknown) => error);

      expect(failure).toBeInstanceOf(pg.DatabaseError);
      expect((failure as pg.DatabaseError).code).toBe('23505');
    });

    it('gives a session id to one of many concurrent creates by different principals, a conflict to the rest', async () => {
      const schema = freshSchema();
      const [first, second] = [await open(schema), await open(schema)];
      const id = `sess-${randomUUID()}`;

      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 === 0 ? first : second).sessions.create(sessionRecord({ id }), { max: 5 }, T0),
        ),
      );

      expect(results.filter((r) => r.status === 'fulfilled' && r.value.created)).toHaveLength(1);
      const refused = results.filter((r) => r.status === 'rejected');
      expect(refused).toHaveLength(9);
      for (const r of refused) expect(isGatehouseError(r.reason, 'ERR_SESSION_CONFLICT')).toBe(true);
    });
  });

  describe('bus', () => {
    it('ignores malformed and unknown payloads on its channel and keeps delivering', async () => {
      const schema = freshSchema();
      const stores = await open(schema);
      const received: ClusterMessage[] = [];
      stores.bus?.subscribe((message) => received.push(message));
      stores.bus?.subscribe(() => {
        throw new Error('a failing subscriber');
      });

      const channel = busChannel(schema);
      for (const payload of [
        'not json',
        'null',
        '42',
        '{"type":"unknown"}',
        '{"type":"session.ended","sessionId":7,"reason":"x"}',
        '{"type":"session.ended","reason":"x"}',
      ]) {
        await admin.query('SELECT pg_notify($1, $2)', [channel, payload]);
      }
      await admin.query('SELECT pg_notify($1, $2)', [
        channel,
        JSON.stringify({ type: 'session.ended', sessionId: 's1', reason: 'expired', extra: 'dropped' }),
      ]);

      await eventually(() => received.length > 0, 10_000);
      expect(received).toEqual([{ type: 'session.ended', sessionId: 's1', reason: 'expired' }]);
      expect(stores.bus?.connected).toBe(true);
    });

    it('reopens its listening connection when the server ends it, says so, and delivers again', async () => {
      const schema = freshSchema();
      const stores = await open(schema);
      const bus = stores.bus as ClusterBus;
      const changes: boolean[] = [];
      bus.onConnectionChange((connected) => changes.push(connected));

      const { rows } = await admin.query<{ terminated: boolean }>(
        'SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE query = $1',
        [`LISTEN ${pg.escapeIdentifier(busChannel(schema))}`],
      );
      expect(rows).toEqual([{ terminated: true }]);

      await eventually(() => changes.length === 2, 30_000);
      expect(changes).toEqual([false, true]);
      expect(bus.connected).toBe(true);
      const received: ClusterMessage[] = [];
      bus.subscribe((message) => received.push(message));
      await bus.publish({ type: 'signing-keys.changed' });
      await eventually(() => received.length === 1, 10_000);
      expect(received).toEqual([{ type: 'signing-keys.changed' }]);
    });

    it('closes idempotently: disconnected, and publish rejects', async () => {
      const stores = await open(freshSchema());
      const bus = stores.bus;
      const changes: boolean[] = [];
      bus?.onConnectionChange((connected) => changes.push(connected));

      await Promise.all([stores.close(), stores.close()]);
      await stores.close();

      expect(bus?.connected).toBe(false);
      expect(changes).toEqual([false]);
      await expect(bus?.publish({ type: 'revocations.changed' })).rejects.toSatisfy(isUnavailable);
      await expect(stores.users.list()).rejects.toSatisfy(isUnavailable);
    });
  });
});
