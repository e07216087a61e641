import type { Redis } from 'ioredis';
import { CONNECT_TIMEOUT_MS, closeRedisClient, openRedisClient, untilReady } from './connection.js';
import { storeError } from './store-error.js';

/** Whether the Redis server writes its data to disk; `undefined` where the server would not say. */
export interface RedisPersistence {
  /** The append-only file (`INFO persistence`: `aof_enabled`). */
  readonly aof: boolean | undefined;
  /** RDB snapshots (`CONFIG GET save` is not empty); `undefined` where `CONFIG` is refused (managed Redis). */
  readonly rdb: boolean | undefined;
}

/** Whether a failure is Redis refusing the command (unknown or forbidden), not the connection failing. */
function refused(error: unknown): boolean {
  return error instanceof Error && error.name === 'ReplyError';
}

/**
 * Reads the persistence settings of the server `client` is connected to, for `gatehouse doctor`: with
 * neither AOF nor RDB, a restart of Redis loses every session, grant and signing key. A connection failure
 * rejects with `ERR_STORE_UNAVAILABLE`.
 *
 * @example
 * ```ts
 * const { aof, rdb } = await readRedisPersistence(client);
 * if (aof === false && rdb === false) warn('Redis keeps nothing across a restart');
 * ```
 */
export async function readRedisPersistence(client: Redis): Promise<RedisPersistence> {
  let aof: boolean | undefined;
  let rdb: boolean | undefined;
  try {
    const match = /^aof_enabled:(\d+)/m.exec(await client.info('persistence'));
    aof = match === null ? undefined : match[1] !== '0';
  } catch (error) {
    if (!refused(error)) throw storeError(error);
  }
  try {
    const reply = await client.config('GET', 'save');
    const value = Array.isArray(reply) ? reply[1] : undefined;
    rdb = typeof value === 'string' ? value.trim() !== '' : undefined;
  } catch (error) {
    if (!refused(error)) throw storeError(error);
  }
  return { aof, rdb };
}

/**
 * {@link readRedisPersistence} on the server at `url`, through a connection of its own that it closes again:
 * what `gatehouse doctor` calls without holding an ioredis client.
 */
export async function redisPersistence(url: string): Promise<RedisPersistence> {
  const client = openRedisClient(url);
  try {
    await untilReady(client, CONNECT_TIMEOUT_MS);
    return await readRedisPersistence(client);
  } finally {
    await closeRedisClient(client);
  }
}
