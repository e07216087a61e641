import type { Redis } from 'ioredis';
import type { ClusterBus, Stores } from '../ports.js';
import { createRedisAuditStore } from './audit.js';
import { openRedisBus } from './bus.js';
import { createRedisClientStore } from './clients.js';
import { createRedisAuthorizationCodeStore } from './codes.js';
import {
  CONNECT_TIMEOUT_MS,
  closeRedisClient,
  ignoreError,
  openRedisClient,
  untilReady,
} from './connection.js';
import { createRedisConsentStore } from './consents.js';
import { createRedisContext } from './context.js';
import { createRedisCounterStore } from './counters.js';
import { indexByCreation } from './creation-indexes.js';
import { createRedisEphemeralStore } from './ephemeral.js';
import { createRedisGrantStore } from './grants.js';
import { keySpace } from './keys.js';
import { type RedisPersistence, readRedisPersistence } from './persistence.js';
import { redisRateLimiter } from './rate-limiter.js';
import { createRedisRevocationStore } from './revocations.js';
import { createRedisSessionStore } from './sessions.js';
import { createRedisSigningKeyStore } from './signing-keys.js';
import { storeError } from './store-error.js';
import { createRedisUpstreamTokenStore } from './upstream-tokens.js';
import { createRedisUserStore } from './users.js';

export type { RedisPersistence } from './persistence.js';
export { readRedisPersistence, redisPersistence } from './persistence.js';

/** The prefix of every key when none is given. */
export const DEFAULT_KEY_PREFIX = 'gatehouse:';

interface CommonOptions {
  /** Prefix of every key and of the bus channel, so several deployments share one database. Default `gatehouse:`. */
  readonly keyPrefix?: string;
  /** How long to wait for Redis to answer before failing, in milliseconds. Default 5000. */
  readonly connectTimeoutMs?: number;
}

/** Where the Redis stores keep their data. */
export type RedisStoresOptions =
  /** Connect to this server (`redis://…`, `rediss://…`); `close()` disconnects. */
  | (CommonOptions & { readonly url: string })
  /**
   * Use a client the caller owns; `close()` leaves it open. Its options stay the caller's: give it
   * `enableOfflineQueue: false`, a small `maxRetriesPerRequest` and a `commandTimeout` so that commands
   * fail fast while Redis is down, and no ioredis `keyPrefix` (pass `keyPrefix` here instead).
   */
  | (CommonOptions & { readonly client: Redis });

/** The Redis stores: every port, the shared rate limiter and the cluster bus. */
export interface RedisStores extends Stores {
  readonly kind: 'redis';
  readonly bus: ClusterBus;
  /** Whether the server persists its data (AOF, RDB), for `gatehouse doctor`. */
  persistence(): Promise<RedisPersistence>;
}

/**
 * Stores in Redis through `ioredis`: shared by every instance using the same server, database and key
 * prefix, durable as far as the server persists (see {@link RedisStores.persistence}).
 *
 * Every operation that reads and writes is one Lua script (or one command), so it is atomic across
 * connections. Every record that expires carries a TTL measured between the injected times plus a margin
 * (see `keys.ts` and `ttl.ts`); liveness is always decided from the stored times and the caller's `now`.
 * While Redis is unreachable, operations reject at once with `ERR_STORE_UNAVAILABLE` (and the rate limiter
 * refuses the same way), as does one waiting for its reply when the connection drops; against a server that
 * stops answering, after `COMMAND_TIMEOUT_MS`. ioredis reconnects by itself, and the same stores work again
 * once Redis is back.
 * Inserting a duplicate authorization code hash, grant id or refresh token hash throws a plain `Error`, a
 * broken invariant like SQLite's constraint errors. `counters` has no `deleteExpired`: counter keys expire.
 *
 * Resolves once the command connection is ready and the bus is subscribed; rejects with
 * `ERR_STORE_UNAVAILABLE` when that takes longer than `connectTimeoutMs`. Meant for a standalone server
 * (or Sentinel): the scripts derive keys from the prefix, which Redis Cluster does not allow.
 *
 * @example
 * ```ts
 * const stores = await createRedisStores({ url: 'redis://127.0.0.1:6379/0', keyPrefix: 'gatehouse:' });
 * try {
 *   await stores.sessions.create(record, { max: 5 }, clock.now());
 * } finally {
 *   await stores.close();
 * }
 * ```
 */
export async function createRedisStores(options: RedisStoresOptions): Promise<RedisStores> {
  const keys = keySpace(options.keyPrefix ?? DEFAULT_KEY_PREFIX);
  const timeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  const owned = 'url' in options;
  if (!owned && options.client.options.keyPrefix) {
    throw new TypeError('The Redis client must not have an ioredis keyPrefix: pass keyPrefix to the stores.');
  }
  const client = owned ? openRedisClient(options.url) : options.client;
  if (!owned) client.on('error', ignoreError);
  let closed = false;
  const ctx = createRedisContext(client, keys, () => closed);

  let bus: ClusterBus;
  const started = Date.now();
  try {
    await untilReady(client, timeoutMs);
    bus = await openRedisBus(client, ctx, Math.max(1, timeoutMs - (Date.now() - started)));
  } catch (error) {
    ctx.detach();
    if (owned) client.disconnect();
    else client.off('error', ignoreError);
    throw storeError(error);
  }
  // After the bus, outside the connect deadline: on a large database the one-time indexing takes a while.
  try {
    await indexByCreation(ctx);
  } catch (error) {
    await bus.close();
    ctx.detach();
    if (owned) client.disconnect();
    else client.off('error', ignoreError);
    throw storeError(error);
  }

  let closing: Promise<void> | undefined;
  return {
    kind: 'redis',
    sessions: createRedisSessionStore(ctx),
    users: createRedisUserStore(ctx),
    clients: createRedisClientStore(ctx),
    codes: createRedisAuthorizationCodeStore(ctx),
    grants: createRedisGrantStore(ctx),
    revocations: createRedisRevocationStore(ctx),
    consents: createRedisConsentStore(ctx),
    upstreamTokens: createRedisUpstreamTokenStore(ctx),
    signingKeys: createRedisSigningKeyStore(ctx),
    ephemeral: createRedisEphemeralStore(ctx),
    counters: createRedisCounterStore(ctx),
    audit: createRedisAuditStore(ctx),
    rateLimiter: redisRateLimiter(client, keys, () => closed),
    bus,
    persistence: () => ctx.run((redis) => readRedisPersistence(redis)),
    close() {
      closing ??= (async () => {
        closed = true;
        await bus.close();
        ctx.detach();
        if (owned) await closeRedisClient(client);
        else client.off('error', ignoreError);
      })();
      return closing;
    },
  };
}
