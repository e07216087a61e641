import type { Redis } from 'ioredis';
import { parseClusterMessage } from '../bus-message.js';
import type { ClusterBus, ClusterMessage } from '../ports.js';
import { closeRedisClient, ignoreError, untilReady } from './connection.js';
import type { RedisContext } from './context.js';
import { storeError, unavailable } from './store-error.js';

/** Calls every listener with `value`; a listener that throws neither stops the others nor reaches ioredis. */
function notify<T>(listeners: ReadonlySet<(value: T) => void>, value: T): void {
  for (const listener of [...listeners]) {
    try {
      listener(value);
    } catch {
      // A listener's failure is its own: the bus is a hint, and the emitter it runs in must not throw.
    }
  }
}

/**
 * The cluster bus on Redis pub/sub: a duplicate of the command client subscribes to the channel `<prefix>bus`;
 * `publish` sends JSON through the command client, so every instance on the prefix — this one too —
 * receives it. Channels belong to the whole server, not to a database: the prefix, not the database number,
 * keeps two deployments' buses apart. The subscription's state is tracked: lost on `close`/`end` (`onConnectionChange(false)`),
 * re-established when ioredis has reconnected and the channel is subscribed again (`true`, so listeners
 * resync). Resolves once subscribed; rejects with `ERR_STORE_UNAVAILABLE` when that takes over `timeoutMs`.
 */
export async function openRedisBus(client: Redis, ctx: RedisContext, timeoutMs: number): Promise<ClusterBus> {
  const channel = ctx.keys.bus;
  const subscriber = client.duplicate({
    lazyConnect: true,
    enableOfflineQueue: false,
    autoResubscribe: true,
  });
  subscriber.on('error', ignoreError);
  try {
    await untilReady(subscriber, timeoutMs);
    await subscriber.subscribe(channel);
  } catch (error) {
    subscriber.disconnect();
    throw storeError(error);
  }

  const listeners = new Set<(message: ClusterMessage) => void>();
  const connectionListeners = new Set<(connected: boolean) => void>();
  let connected = true;
  let closed = false;
  // Counts connections lost, so a re-subscription answered after yet another loss is not taken for success.
  let losses = 0;
  const setConnected = (value: boolean): void => {
    if (closed || connected === value) return;
    connected = value;
    notify(connectionListeners, value);
  };

  subscriber.on('message', (from: string, text: string) => {
    if (from !== channel) return;
    const message = parseClusterMessage(text);
    if (message !== undefined) notify(listeners, message);
  });
  const lost = (): void => {
    losses += 1;
    setConnected(false);
  };
  subscriber.on('close', lost);
  subscriber.on('end', lost);
  subscriber.on('ready', () => {
    // ioredis has already re-sent SUBSCRIBE (autoResubscribe); this one's answer proves the channel is live.
    const attempt = losses;
    subscriber.subscribe(channel).then(() => {
      if (attempt === losses) setConnected(true);
    }, ignoreError);
  });

  return {
    get connected() {
      return connected;
    },
    async publish(message) {
      if (closed) throw unavailable(undefined, 'The Redis cluster bus is closed.');
      await ctx.run((redis) => redis.publish(channel, JSON.stringify(message)));
    },
    subscribe(listener) {
      const own = (message: ClusterMessage): void => listener(message);
      listeners.add(own);
      return () => {
        listeners.delete(own);
      };
    },
    onConnectionChange(listener) {
      const own = (value: boolean): void => listener(value);
      connectionListeners.add(own);
      return () => {
        connectionListeners.delete(own);
      };
    },
    async close() {
      if (closed) return;
      setConnected(false);
      closed = true;
      listeners.clear();
      connectionListeners.clear();
      await closeRedisClient(subscriber);
    },
  };
}
