import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { isGatehouseError } from '../../../src/errors/gatehouse-error.js';
import type { GrantRecord, SessionRecord } from '../../../src/stores/ports.js';
import {
  createRedisStores,
  type RedisStores,
  readRedisPersistence,
  redisPersistence,
} from '../../../src/stores/redis/index.js';
import { TTL_MARGIN_MS } from '../../../src/stores/redis/ttl.js';
import { deleteRedisPrefix, uniqueRedisPrefix } from '../../contract/redis-harness.js';
import { freePort } from '../../helpers/private-redis.js';

/** The real Redis CI provides (`.ci/run` exports it); without it this suite skips, visibly. */
const REDIS_URL = process.env.GATEHOUSE_TEST_REDIS_URL;
if (REDIS_URL === undefined)
  console.warn('[redis] GATEHOUSE_TEST_REDIS_URL is not set: skipped the Redis tests');

/** January 2026, as the contract suites use: months behind the wall clock, so TTLs must not read it. */
const T0 = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** How far a TTL may have run down between being set and being read, on a loaded machine. */
const ELAPSED_MS = 30_000;

function sessionRecord(overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id: `sess-${randomUUID()}`,
    principalKey: `local#${randomUUID()}`,
    kind: 'streamable-http',
    createdAt: T0,
    lastSeenAt: T0,
    idleTimeoutMs: 30 * MINUTE,
    idleExpiresAt: T0 + 30 * MINUTE,
    absoluteExpiresAt: T0 + 8 * HOUR,
    version: 1,
    data: {},
    ...overrides,
  };
}

function grantRecord(overrides: Partial<GrantRecord> = {}): GrantRecord {
  return {
    id: `grant-${randomUUID()}`,
    clientId: 'client-a',
    principal: { subject: randomUUID(), idp: 'local' },
    scopes: ['mcp:tools'],
    resource: 'https://mcp.example.test/mcp',
    authTime: T0,
    createdAt: T0,
    expiresAt: T0 + 30 * DAY,
    generation: 1,
    rotatedAt: T0,
    ...overrides,
  };
}

/** Every key under `prefix`, found with SCAN, with its PTTL (-1: none). */
async function ttlsUnder(client: Redis, prefix: string): Promise<Map<string, number>> {
  const ttls = new Map<string, number>();
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    for (const key of keys) ttls.set(key.slice(prefix.length), await client.pttl(key));
  } while (cursor !== '0');
  return ttls;
}

/** Asserts that `ttl` is `expected` (ms, measured when it was set) give or take the time since. */
function expectTtlNear(ttl: number | undefined, expected: number): void {
  expect(ttl).toBeGreaterThan(expected - ELAPSED_MS);
  expect(ttl).toBeLessThanOrEqual(expected);
}

describe.skipIf(REDIS_URL === undefined)('Redis stores beyond the contracts', () => {
  const url = REDIS_URL as string;
  const opened: RedisStores[] = [];
  const prefixes: string[] = [];
  const clients: Redis[] = [];

  /** A plain client of the test's own, to look at the keys the stores wrote. */
  function plainClient(options: { keyPrefix?: string } = {}): Redis {
    const client = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, ...options });
    client.on('error', () => {});
    clients.push(client);
    return client;
  }

  async function admin(): Promise<Redis> {
    const client = plainClient();
    await client.connect();
    return client;
  }

  async function open(keyPrefix = uniqueRedisPrefix()): Promise<RedisStores> {
    prefixes.push(keyPrefix);
    const stores = await createRedisStores({ url, keyPrefix });
    opened.push(stores);
    return stores;
  }

  afterEach(async () => {
    for (const stores of opened.splice(0)) await stores.close();
    for (const prefix of prefixes.splice(0)) await deleteRedisPrefix(url, prefix);
    for (const client of clients.splice(0)) client.disconnect();
  });

  it('gives every key a TTL measured from the injected times, except the kinds that never expire', async () => {
    const prefix = uniqueRedisPrefix();
    const stores = await open(prefix);
    const now = T0 + MINUTE;

    const session = sessionRecord();
    await stores.sessions.create(session, { max: 5 }, T0);
    await stores.sessions.touch(session.id, session.principalKey, now);
    const expiredSession = sessionRecord({ idleExpiresAt: T0 - MINUTE });
    await stores.sessions.create(expiredSession, { max: 5 }, T0);
    await stores.codes.create({
      codeHash: 'code-hash',
      grantId: 'grant-of-code',
      clientId: 'client-a',
      redirectUri: 'https://app.example.test/cb',
      codeChallenge: 'challenge',
      resource: 'https://mcp.example.test/mcp',
      scopes: ['mcp:tools'],
      principal: { subject: 'alice', idp: 'local' },
      authTime: T0,
      createdAt: T0,
      expiresAt: T0 + MINUTE,
    });
    await stores.codes.consume('code-hash', T0);
    const grant = grantRecord();
    const hashes = ['rt-1', 'rt-2', 'rt-3', 'rt-4'];
    await stores.grants.create(grant, hashes[0]);
    for (let generation = 1; generation <= 3; generation += 1) {
      const next = hashes[generation] as string;
      expect(await stores.grants.rotate(grant.id, generation, next, T0 + generation, 'sealed')).toBeDefined();
    }
    const revoked = grantRecord();
    await stores.grants.create(revoked, 'rt-revoked');
    await stores.grants.revoke(revoked.id, now, now + HOUR);
    await stores.revocations.add({ kind: 'jti', id: 'jti-1', revokedAt: now, expiresAt: now + 5 * MINUTE });
    await stores.consents.put({
      principalKey: 'local#alice',
      clientId: 'client-a',
      scopes: ['mcp:tools'],
      grantedAt: T0,
      expiresAt: T0 + 90 * DAY,
    });
    await stores.ephemeral.put('authorize', 'pending', { step: 1 }, T0 + 10 * MINUTE);
    await stores.ephemeral.put('login', 'browser', { step: 2 }, T0 + 12 * HOUR);
    await stores.counters.increment('login:alice', 15 * MINUTE, T0);
    await stores.users.create({
      id: 'user-1',
      username: 'alice',
      passwordHash: '$argon2id$x',
      createdAt: T0,
      updatedAt: T0,
      credentialsChangedAt: T0,
      roles: [],
    });
    const registration = {
      tokenEndpointAuthMethod: 'none',
      redirectUris: ['http://127.0.0.1/cb'],
      grantTypes: ['authorization_code'],
      responseTypes: ['code'],
      applicationType: 'native',
      metadata: {},
      createdAt: T0,
    } as const;
    await stores.clients.create({ ...registration, clientId: 'client-expiring', expiresAt: T0 + 30 * DAY });
    await stores.clients.create({ ...registration, clientId: 'client-forever' });
    await stores.signingKeys.create({
      kid: 'kid-1',
      alg: 'ES256',
      publicJwk: { kty: 'EC' },
      privateJwkCiphertext: 'sealed',
      createdAt: T0,
      retiresAt: T0 + 30 * DAY,
      expiresAt: T0 + 31 * DAY,
    });
    await stores.upstreamTokens.put(
      { principalKey: 'idp#alice', provider: 'corp', ciphertext: 'sealed', updatedAt: T0 },
      0,
    );
    await stores
      .rateLimiter({ points: 5, durationSeconds: 60, keyPrefix: 'ws-connect-user' })
      .consume('alice');

    const ttls = await ttlsUnder(await admin(), prefix);

    const forever = [...ttls].filter(([, ttl]) => ttl < 0).map(([key]) => key);
    expect(forever.sort()).toEqual(
      [
        'client:client-forever',
        'clients:by-creation',
        'clients:by-expiry',
        'indexes:by-creation',
        'revocations:watermark',
        'upstream-token:idp%23alice:corp',
        'user:user-1',
        'users:by-name',
      ].sort(),
    );
    expect(ttls.size).toBeGreaterThan(25);
    // Measured between injected times, never against the wall clock, which is months past them.
    expectTtlNear(ttls.get(`session:${session.id}`), 30 * MINUTE + TTL_MARGIN_MS);
    expectTtlNear(ttls.get(`session:${expiredSession.id}`), TTL_MARGIN_MS);
    expectTtlNear(ttls.get('code:code-hash'), MINUTE + TTL_MARGIN_MS);
    expectTtlNear(ttls.get(`grant:${grant.id}`), 30 * DAY + TTL_MARGIN_MS);
    expectTtlNear(ttls.get(`revocation:grant:${revoked.id}`), HOUR + TTL_MARGIN_MS);
    expectTtlNear(ttls.get('revocation:jti:jti-1'), 5 * MINUTE + TTL_MARGIN_MS);
    expectTtlNear(ttls.get('consent:local%23alice:client-a'), 90 * DAY + TTL_MARGIN_MS);
    expectTtlNear(ttls.get('counter:login:alice'), 15 * MINUTE + TTL_MARGIN_MS);
    expectTtlNear(ttls.get('client:client-expiring'), 30 * DAY + TTL_MARGIN_MS);
    expectTtlNear(ttls.get('signing-key:kid-1'), 31 * DAY + TTL_MARGIN_MS);
    // Ephemeral records have no `now` on put: their TTL is the margin for a deadline the server has passed.
    expectTtlNear(ttls.get('ephemeral:authorize:pending'), TTL_MARGIN_MS);
    // Every generation's refresh token expires with its grant, and so does the grant's token list.
    const grantTtl = ttls.get(`grant:${grant.id}`) as number;
    for (const key of [...hashes.map((hash) => `refresh-token:${hash}`), `grant-tokens:${grant.id}`]) {
      expect(ttls.get(key), key).toBeGreaterThan(grantTtl - ELAPSED_MS);
      expect(ttls.get(key), key).toBeLessThanOrEqual(grantTtl + ELAPSED_MS);
    }
    // An index lives at least as long as the longest-lived record it names.
    expect(ttls.get('grants:by-expiry')).toBeGreaterThanOrEqual(grantTtl - ELAPSED_MS);
    expect(ttls.get('sessions:by-deadline')).toBeGreaterThanOrEqual(
      (ttls.get(`session:${session.id}`) as number) - ELAPSED_MS,
    );
    expect(ttls.get('grants:by-creation')).toBeGreaterThanOrEqual(grantTtl - ELAPSED_MS);
    expect(ttls.get('sessions:by-creation')).toBeGreaterThanOrEqual(
      (ttls.get(`session:${session.id}`) as number) - ELAPSED_MS,
    );
    expect(ttls.get('rate-limit:ws-connect-user:alice')).toBeGreaterThan(0);
  });

  it('sweeps a record with its index entries, leaving no garbage behind', async () => {
    const prefix = uniqueRedisPrefix();
    const stores = await open(prefix);
    const session = sessionRecord();
    await stores.sessions.create(session, { max: 5 }, T0);
    const grant = grantRecord({ expiresAt: T0 + HOUR });
    await stores.grants.create(grant, 'rt-swept');
    await stores.grants.rotate(grant.id, 1, 'rt-swept-2', T0 + 1, undefined);
    await stores.consents.put({
      principalKey: 'local#bob',
      clientId: 'client-b',
      scopes: [],
      grantedAt: T0,
      expiresAt: T0 + DAY,
    });

    expect(await stores.sessions.deleteExpired(T0 + DAY, 10)).toEqual([session]);
    expect(await stores.grants.deleteExpired(T0 + DAY, 10)).toBe(1);
    expect(await stores.consents.deleteByPrincipal('local#bob')).toBe(1);

    // Only the marker that the creation indexes were built stays.
    expect([...(await ttlsUnder(await admin(), prefix)).keys()]).toEqual(['indexes:by-creation']);
  });

  it('retention removes audit entries from the log and from every index, leaving no key behind', async () => {
    const prefix = uniqueRedisPrefix();
    const stores = await open(prefix);
    const entry = (at: number, type: string, subject?: string) => ({
      id: `${String(at).padStart(13, '0')}-${randomUUID()}`,
      at,
      type,
      ...(subject === undefined ? {} : { subject }),
      event: { type },
    });
    const old = [
      entry(T0, 'login', 'alice'),
      entry(T0 + 1, 'oauth.token.issued', 'bob'),
      entry(T0 + 2, 'keys.rotated'),
    ];
    const recent = [entry(T0 + HOUR, 'login', 'carol'), entry(T0 + HOUR + 1, 'oauth.token.issued')];
    await stores.audit.append([...old, ...recent]);
    const client = await admin();
    expect([...(await ttlsUnder(client, `${prefix}audits:`)).keys()].sort()).toEqual([
      'by-subject:alice',
      'by-subject:bob',
      'by-subject:carol',
      'by-time',
      'by-type:keys.rotated',
      'by-type:login',
      'by-type:oauth.token.issued',
      'entries',
      'types',
    ]);

    expect(await stores.audit.deleteBefore(T0 + HOUR, 100)).toBe(3);

    // Every index of an old entry went with it; a type with no entries left leaves the set of types.
    expect([...(await ttlsUnder(client, `${prefix}audits:`)).keys()].sort()).toEqual([
      'by-subject:carol',
      'by-time',
      'by-type:login',
      'by-type:oauth.token.issued',
      'entries',
      'types',
    ]);
    expect((await client.smembers(`${prefix}audits:types`)).sort()).toEqual(['login', 'oauth.token.issued']);
    expect(await client.hlen(`${prefix}audits:entries`)).toBe(2);
    expect(await client.zcard(`${prefix}audits:by-type:login`)).toBe(1);
    expect(await stores.audit.query({ order: 'asc', limit: 10, type: 'oauth.' })).toHaveLength(1);

    expect(await stores.audit.deleteBefore(T0 + DAY, 100)).toBe(2);
    expect([...(await ttlsUnder(client, `${prefix}audits:`)).keys()]).toEqual([]);
  });

  it('reads a user stored before roles existed with no roles, and gives it roles', async () => {
    const prefix = uniqueRedisPrefix();
    const stores = await open(prefix);
    const client = await admin();
    // A user hash as the adapter wrote it before roles: no `roles` field.
    await client.hset(`${prefix}user:usr-old`, {
      id: 'usr-old',
      username: 'old',
      passwordHash: '$argon2id$x',
      createdAt: String(T0),
      updatedAt: String(T0),
      credentialsChangedAt: String(T0),
    });
    await client.hset(`${prefix}users:by-name`, 'old', 'usr-old');

    expect(await stores.users.findByUsername('old')).toStrictEqual({
      id: 'usr-old',
      username: 'old',
      passwordHash: '$argon2id$x',
      createdAt: T0,
      updatedAt: T0,
      credentialsChangedAt: T0,
      roles: [],
    });
    expect((await stores.users.setRoles('usr-old', ['admin'], T0 + 1))?.roles).toEqual(['admin']);
    expect((await stores.users.list())[0]?.roles).toEqual(['admin']);
  });

  it('lists sessions, grants and clients stored before the creation indexes, once reopened', async () => {
    const prefix = uniqueRedisPrefix();
    const first = await open(prefix);
    const session = sessionRecord();
    const grant = grantRecord();
    const registration = {
      clientId: 'client-old',
      tokenEndpointAuthMethod: 'none',
      redirectUris: ['http://127.0.0.1/cb'],
      grantTypes: ['authorization_code'],
      responseTypes: ['code'],
      applicationType: 'native',
      metadata: {},
      createdAt: T0,
      expiresAt: T0 + DAY,
    } as const;
    await first.sessions.create(session, { max: 5 }, T0);
    await first.grants.create(grant, 'rt-old');
    await first.clients.create(registration);
    await first.close();
    // What an older Gatehouse left: the records, without the creation indexes or the marker.
    const client = await admin();
    await client.del(
      `${prefix}sessions:by-creation`,
      `${prefix}grants:by-creation`,
      `${prefix}clients:by-creation`,
      `${prefix}clients:by-expiry`,
      `${prefix}indexes:by-creation`,
    );

    const reopened = await open(prefix);

    expect(await reopened.sessions.list(T0, { limit: 10 })).toStrictEqual([session]);
    expect(await reopened.grants.list(T0, { limit: 10 })).toStrictEqual([grant]);
    expect(await reopened.clients.list(T0, { limit: 10 })).toStrictEqual([registration]);
    expect(await client.zscore(`${prefix}clients:by-expiry`, 'client-old')).toBe(String(T0 + DAY));
    expect(await client.exists(`${prefix}indexes:by-creation`)).toBe(1);
  });

  it('keeps two stores on different prefixes of one database apart', async () => {
    const first = await open();
    const second = await open();
    const user = {
      id: 'user-shared',
      username: 'shared',
      passwordHash: '$argon2id$x',
      createdAt: T0,
      updatedAt: T0,
      credentialsChangedAt: T0,
      roles: [],
    };
    const session = sessionRecord();

    expect(await first.users.create(user)).toBe(true);
    expect(await second.users.create({ ...user, passwordHash: '$argon2id$y' })).toBe(true);
    await first.sessions.create(session, { max: 1 }, T0);
    await first.revocations.add({ kind: 'jti', id: 'j', revokedAt: T0, expiresAt: T0 + HOUR });

    expect((await second.users.findByUsername('shared'))?.passwordHash).toBe('$argon2id$y');
    expect(await second.sessions.get(session.id, T0)).toBeUndefined();
    expect(
      await second.sessions.create(sessionRecord({ principalKey: session.principalKey }), { max: 1 }, T0),
    ).toMatchObject({ created: true, activeCount: 0 });
    expect(await second.revocations.listSince(0, T0)).toEqual([]);
    expect(await second.revocations.watermark()).toBe(0);
    expect(await second.sessions.deleteExpired(T0 + DAY, 10)).toHaveLength(1);
    expect(await first.sessions.get(session.id, T0)).toEqual(session);
  });

  it('fails with ERR_STORE_UNAVAILABLE within its connect timeout when nothing answers', async () => {
    const port = await freePort();
    const started = Date.now();

    await expect(createRedisStores({ url: `redis://127.0.0.1:${port}/0` })).rejects.toSatisfy((error) =>
      isGatehouseError(error, 'ERR_STORE_UNAVAILABLE'),
    );

    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('uses a caller-owned client and leaves it open on close', async () => {
    const client = plainClient();
    const keyPrefix = uniqueRedisPrefix();
    prefixes.push(keyPrefix);
    const stores = await createRedisStores({ client, keyPrefix });
    await stores.counters.increment('k', MINUTE, T0);

    await stores.close();
    await stores.close();

    expect(await client.ping()).toBe('PONG');
    expect(stores.bus.connected).toBe(false);
    await expect(stores.counters.peek('k', T0)).rejects.toSatisfy((error) =>
      isGatehouseError(error, 'ERR_STORE_UNAVAILABLE'),
    );
    await expect(createRedisStores({ client: plainClient({ keyPrefix: 'x:' }) })).rejects.toBeInstanceOf(
      TypeError,
    );
  });

  it("reads the machine's Redis persistence: neither AOF nor RDB", async () => {
    const expected = { aof: false, rdb: false };
    expect(await redisPersistence(url)).toEqual(expected);
    expect(await (await open()).persistence()).toEqual(expected);
    expect(await readRedisPersistence(await admin())).toEqual(expected);
  });
});
