import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMAND_TIMEOUT_MS } from '../../../src/stores/redis/connection.js';
import { createRedisStores, type RedisStores } from '../../../src/stores/redis/index.js';
import {
  busRoundTrip,
  FAIL_FAST_MS,
  isUnavailable,
  RECOVERY_MS,
  untilAvailable,
} from '../../helpers/outage.js';
import { type PrivateRedis, REDIS_SERVER_AVAILABLE, startPrivateRedis } from '../../helpers/private-redis.js';
import { eventually } from '../../helpers/wait.js';

const T0 = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;

if (!REDIS_SERVER_AVAILABLE)
  console.warn('[redis-outage] redis-server is not on PATH: skipped the outage test');

describe.skipIf(!REDIS_SERVER_AVAILABLE)('Redis stores through an outage of a private redis-server', () => {
  let server: PrivateRedis;
  let stores: RedisStores;

  beforeAll(async () => {
    server = await startPrivateRedis();
    stores = await createRedisStores({ url: server.url, keyPrefix: 'gh-outage:' });
  });

  afterAll(async () => {
    await stores?.close();
    await server?.destroy();
  });

  it('fails fast while Redis is down, then works again on the same stores and bus', {
    timeout: 120_000,
  }, async () => {
    const bus = stores.bus;
    const changes: boolean[] = [];
    bus.onConnectionChange((connected) => changes.push(connected));
    const limiter = stores.rateLimiter({ points: 100, durationSeconds: 60, keyPrefix: 'outage' });
    expect(await stores.counters.increment('before', MINUTE, T0)).toEqual({ count: 1, resetAt: T0 + MINUTE });
    await busRoundTrip(bus);

    // Commands in flight when the server goes away settle too: answered, or refused as unavailable.
    const stopping = Date.now();
    // Settled from the start: a command refused while the server is still stopping would otherwise be a
    // rejection nobody handles yet.
    const inFlight = Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => stores.counters.increment(`flight-${i}`, MINUTE, T0)),
    );
    await server.stop();
    const settled = await inFlight;
    for (const outcome of settled) {
      if (outcome.status === 'rejected') expect(isUnavailable(outcome.reason)).toBe(true);
    }
    expect(Date.now() - stopping).toBeLessThan(RECOVERY_MS);

    await eventually(() => !bus.connected, RECOVERY_MS);
    expect(changes).toEqual([false]);
    const operations: Array<() => Promise<unknown>> = [
      () => stores.sessions.get('sess-any', T0),
      () => stores.counters.increment('during', MINUTE, T0),
      () => stores.grants.revoke('grant-any', T0, T0 + MINUTE),
      () => stores.revocations.watermark(),
      () => stores.ephemeral.take('authorize', 'any', T0),
      () => limiter.consume('alice'),
      () => bus.publish({ type: 'revocations.changed' }),
    ];
    for (const operation of operations) {
      const started = Date.now();
      await expect(operation()).rejects.toSatisfy(isUnavailable);
      expect(Date.now() - started).toBeLessThan(FAIL_FAST_MS);
    }

    await server.start();

    await untilAvailable(() => stores.revocations.watermark());
    await eventually(() => bus.connected, RECOVERY_MS);
    expect(changes).toEqual([false, true]);
    // The private server keeps nothing across a restart; what matters is that the same objects work again.
    expect(await stores.counters.peek('before', T0)).toBeUndefined();
    expect(await stores.counters.increment('after', MINUTE, T0)).toEqual({ count: 1, resetAt: T0 + MINUTE });
    expect(await limiter.consume('alice')).toEqual({ allowed: true });
    await busRoundTrip(bus);
  });

  it('refuses as unavailable, after the command timeout, while the server stops answering', {
    timeout: 60_000,
  }, async () => {
    await untilAvailable(() => stores.revocations.watermark());
    const admin = new Redis(server.url);
    admin.on('error', () => {});
    try {
      // Writes (every script) now wait, on an open connection, until the pause ends.
      await admin.call('CLIENT', 'PAUSE', String(4 * COMMAND_TIMEOUT_MS), 'WRITE');
      const started = Date.now();
      await expect(stores.counters.increment('paused', MINUTE, T0)).rejects.toSatisfy(isUnavailable);
      expect(Date.now() - started).toBeLessThan(2 * COMMAND_TIMEOUT_MS);
      await admin.call('CLIENT', 'UNPAUSE');
      await untilAvailable(() => stores.revocations.watermark());
    } finally {
      admin.disconnect();
    }
  });

  it('refuses a command in flight when the server crashes at once, not after the command timeout', {
    timeout: 60_000,
  }, async () => {
    await untilAvailable(() => stores.revocations.watermark());
    const admin = new Redis(server.url);
    admin.on('error', () => {});
    try {
      // Writes (every script) wait on the server, so the next one is in flight when it crashes.
      await admin.call('CLIENT', 'PAUSE', String(4 * COMMAND_TIMEOUT_MS), 'WRITE');
      const inFlight = stores.counters.increment('in-flight', MINUTE, T0).then(
        () => 'answered',
        (error: unknown) => error,
      );
      const crashed = Date.now();

      // Back at once: ioredis reconnects before giving up on the command, and then never answers it.
      await server.crash();
      await server.start();

      expect(isUnavailable(await inFlight)).toBe(true);
      // Well inside the command timeout, which alone would end the wait otherwise.
      expect(Date.now() - crashed).toBeLessThan(COMMAND_TIMEOUT_MS / 2);
    } finally {
      admin.disconnect();
      await server.start();
    }
    await untilAvailable(() => stores.revocations.watermark());
  });
});
