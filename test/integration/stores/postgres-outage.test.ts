import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterBus, SessionRecord, Stores, UserRecord } from '../../../src/stores/ports.js';
import { createPostgresStores } from '../../../src/stores/postgres/index.js';
import { busRoundTrip, failsFast, RECOVERY_MS } from '../../helpers/outage.js';
import {
  POSTGRES_SERVER_AVAILABLE,
  type PrivatePostgres,
  startPrivatePostgres,
} from '../../helpers/private-postgres.js';
import { eventually } from '../../helpers/wait.js';

const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

if (!POSTGRES_SERVER_AVAILABLE)
  console.warn('[postgres-outage] initdb/postgres are not available: skipped the outage test');

function sessionRecord(principalKey: string): SessionRecord {
  return {
    id: `sess-${randomUUID()}`,
    principalKey,
    kind: 'streamable-http',
    createdAt: T0,
    lastSeenAt: T0,
    idleTimeoutMs: HOUR,
    idleExpiresAt: T0 + HOUR,
    absoluteExpiresAt: T0 + 8 * HOUR,
    version: 1,
    data: {},
  };
}

describe.skipIf(!POSTGRES_SERVER_AVAILABLE)('PostgreSQL stores through an outage of a private server', () => {
  let server: PrivatePostgres;
  let stores: Stores;

  beforeAll(async () => {
    server = await startPrivatePostgres();
    stores = await createPostgresStores({ url: server.url, schema: 'gh_outage', max: 4 });
  }, 60_000);

  afterAll(async () => {
    await stores?.close();
    await server?.destroy();
  }, 60_000);

  it('fails closed and fast while the server is down, then the same stores and bus work again', async () => {
    const bus = stores.bus as ClusterBus;
    const user: UserRecord = {
      id: 'u1',
      username: 'alice',
      passwordHash: 'h',
      createdAt: T0,
      updatedAt: T0,
      credentialsChangedAt: T0,
      roles: [],
    };
    const limiter = stores.rateLimiter({ points: 100, durationSeconds: 60, keyPrefix: 'outage' });
    expect(await stores.users.create(user)).toBe(true);
    expect(await limiter.consume('k')).toEqual({ allowed: true });
    await busRoundTrip(bus);
    const changes: boolean[] = [];
    bus.onConnectionChange((connected) => changes.push(connected));

    await server.stop();

    // Plain statements, transactions, the rate limiter and the bus all refuse at once, never hang.
    await failsFast(() => stores.users.get(user.id));
    await failsFast(() => stores.sessions.create(sessionRecord('local#alice'), { max: 2 }, T0));
    await failsFast(() => stores.grants.revoke('g1', T0, T0 + HOUR));
    await failsFast(() => stores.codes.consume('code', T0));
    await failsFast(() => limiter.consume('k'));
    await failsFast(() => bus.publish({ type: 'revocations.changed' }));
    await eventually(() => !bus.connected, RECOVERY_MS);
    expect(changes).toEqual([false]);

    await server.start();

    // The pool opens new connections: the very first statement on the same stores succeeds.
    expect(await stores.users.get(user.id)).toEqual(user);
    expect(await stores.sessions.create(sessionRecord('local#alice'), { max: 2 }, T0)).toMatchObject({
      created: true,
    });
    expect(await limiter.consume('k')).toEqual({ allowed: true });
    // The bus reconnects by itself (backoff capped at 5 s), says so, and delivers again.
    await eventually(() => bus.connected, RECOVERY_MS);
    expect(changes).toEqual([false, true]);
    await busRoundTrip(bus);
  }, 120_000);
});
