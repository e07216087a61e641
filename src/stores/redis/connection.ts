import { Redis, type RedisOptions } from 'ioredis';
import { unavailable } from './store-error.js';

/** How long opening the stores waits for Redis to answer before failing, in milliseconds. */
export const CONNECT_TIMEOUT_MS = 5000;

/**
 * How long one command may wait for its reply, in milliseconds. Bounds a command sent just before the
 * connection dropped (ioredis neither resends nor rejects it once reconnected) and a server that stopped
 * answering without closing the connection.
 */
export const COMMAND_TIMEOUT_MS = 5000;

/** Longest pause between two reconnection attempts, in milliseconds. */
const MAX_RECONNECT_DELAY_MS = 1000;

/**
 * Options of every connection the adapter opens itself. While Redis is unreachable, commands fail at once
 * instead of queueing (`enableOfflineQueue: false`, one retry), and a command whose connection dropped is
 * never replayed on the next one (`autoResendUnfulfilledCommands: false`): a script that may already have
 * run (a rotation, an increment) must surface as a failure, not run twice. ioredis keeps reconnecting, so
 * the same stores work again once Redis is back.
 */
export const CLIENT_OPTIONS: RedisOptions = {
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  autoResendUnfulfilledCommands: false,
  commandTimeout: COMMAND_TIMEOUT_MS,
  connectTimeout: CONNECT_TIMEOUT_MS,
  retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
};

/** Does nothing: the `'error'` listener every client carries, so a dropped connection never crashes. */
export function ignoreError(): void {}

/**
 * A client for `url` (`redis://[[user]:password@]host:port/db`, `rediss://` for TLS), not yet connected,
 * with an `'error'` listener attached.
 */
export function openRedisClient(url: string): Redis {
  const client = new Redis(url, CLIENT_OPTIONS);
  client.on('error', ignoreError);
  return client;
}

/**
 * Resolves once `client` is ready (connecting it first when it is lazy and idle); rejects with
 * `ERR_STORE_UNAVAILABLE`, the last connection error as its cause, when it is not ready within `timeoutMs`
 * or gives up reconnecting. ioredis keeps retrying meanwhile, so a Redis starting a moment late is fine.
 */
export function untilReady(client: Redis, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  if (client.status === 'end') return Promise.reject(unavailable(undefined, 'The Redis client is closed.'));
  return new Promise((resolve, reject) => {
    let lastError: unknown;
    const onError = (error: unknown): void => {
      lastError = error;
    };
    const settle = (error?: unknown): void => {
      clearTimeout(timer);
      client.off('error', onError);
      client.off('ready', onReady);
      client.off('end', onEnd);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onReady = (): void => settle();
    const onEnd = (): void =>
      settle(unavailable(lastError, 'The Redis connection ended before it was ready.'));
    const timer = setTimeout(
      () => settle(unavailable(lastError, `Redis did not answer within ${timeoutMs} ms.`)),
      timeoutMs,
    );
    client.on('error', onError);
    client.once('ready', onReady);
    client.once('end', onEnd);
    if (client.status === 'wait') client.connect().catch(ignoreError);
  });
}

/** Closes a connection the adapter opened: `QUIT` when Redis answers, then the socket in any case. */
export async function closeRedisClient(client: Redis): Promise<void> {
  if (client.status === 'ready') await client.quit().catch(ignoreError);
  client.disconnect();
}
