import { createHash } from 'node:crypto';
import type { ClientConfig } from 'pg';
import pg from 'pg';
import { parseClusterMessage } from '../bus-message.js';
import type { ClusterBus, ClusterMessage } from '../ports.js';
import type { PostgresContext } from './context.js';
import { storeError, unavailable } from './store-error.js';

/** The first pause before reconnecting the listening connection, in milliseconds; doubles on each failure. */
const FIRST_RETRY_MS = 100;
/** The longest pause between two reconnection attempts, in milliseconds. */
const MAX_RETRY_MS = 5_000;
/** PostgreSQL's longest identifier, in bytes (`NAMEDATALEN - 1`); a longer channel name is cut or refused. */
const MAX_CHANNEL_BYTES = 63;

/**
 * The `LISTEN/NOTIFY` channel of the stores on `schema`: `gatehouse:<schema>` when that fits in an
 * identifier, else `gatehouse#` and a hash of the schema name, so that each schema has its own channel.
 */
export function busChannel(schema: string): string {
  const readable = `gatehouse:${schema}`;
  if (Buffer.byteLength(readable) <= MAX_CHANNEL_BYTES) return readable;
  return `gatehouse#${createHash('sha256').update(schema).digest('hex').slice(0, 48)}`;
}

/** A {@link ClusterBus} that connects when started. */
export interface PostgresBus extends ClusterBus {
  /** Opens the listening connection; rejects with `ERR_STORE_UNAVAILABLE` when it cannot. */
  start(): Promise<void>;
}

/**
 * The cluster bus on PostgreSQL `LISTEN/NOTIFY`. A dedicated connection (never one of the pool's, which
 * forget their `LISTEN` when recycled) listens on the schema's channel; `publish` is `pg_notify` through the
 * pool, so the message leaves once the server accepted it and reaches every listener on the channel, this
 * instance included. Incoming payloads are parsed and checked (see {@link parseClusterMessage}); anything
 * else is ignored, and a listener that throws affects no other.
 *
 * When the listening connection fails or ends, `connected` turns false (listeners hear `false`) and it is
 * reopened after 100 ms, doubling up to 5 s between attempts, until it listens again (listeners hear
 * `true` and resync, since messages sent meanwhile were lost).
 */
export function createPostgresBus(ctx: PostgresContext, connection: ClientConfig): PostgresBus {
  const channel = busChannel(ctx.schema);
  const listenStatement = `LISTEN ${pg.escapeIdentifier(channel)}`;
  const subscribers = new Set<(message: ClusterMessage) => void>();
  const watchers = new Set<(connected: boolean) => void>();
  let listener: pg.Client | undefined;
  let connecting: Promise<void> | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let retryMs = FIRST_RETRY_MS;
  let connected = false;
  let closed = false;

  const setConnected = (value: boolean): void => {
    if (connected === value) return;
    connected = value;
    for (const watcher of [...watchers]) {
      try {
        watcher(value);
      } catch {
        // A watcher's failure is its own; the others still hear of the change.
      }
    }
  };

  const deliver = (payload: string | undefined): void => {
    const message = parseClusterMessage(payload);
    if (message === undefined) return;
    for (const subscriber of [...subscribers]) {
      try {
        subscriber(message);
      } catch {
        // A subscriber's failure is its own; it must not reach pg's emitter or the other subscribers.
      }
    }
  };

  const lost = (client: pg.Client): void => {
    // Events of a connection already replaced or being opened are not this bus's concern.
    if (client !== listener) return;
    listener = undefined;
    client.end().catch(() => undefined);
    setConnected(false);
    reconnectLater();
  };

  const open = async (): Promise<void> => {
    const client = new pg.Client(connection);
    // Attached before connecting: an 'error' without a listener would crash the process.
    client.on('error', () => lost(client));
    client.on('end', () => lost(client));
    client.on('notification', (notification) => {
      if (client === listener && notification.channel === channel) deliver(notification.payload);
    });
    try {
      await client.connect();
      await client.query(listenStatement);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw storeError(error);
    }
    if (closed) {
      await client.end().catch(() => undefined);
      return;
    }
    listener = client;
    retryMs = FIRST_RETRY_MS;
    setConnected(true);
  };

  const attempt = (): Promise<void> => {
    connecting = open().finally(() => {
      connecting = undefined;
    });
    return connecting;
  };

  function reconnectLater(): void {
    if (closed || retryTimer !== undefined) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      attempt().catch(() => {
        retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
        reconnectLater();
      });
    }, retryMs);
    // Reconnecting alone never keeps the process alive.
    retryTimer.unref();
  }

  return {
    start: attempt,
    get connected() {
      return connected;
    },
    async publish(message) {
      if (closed) throw unavailable(undefined, undefined, 'The PostgreSQL cluster bus is closed.');
      await ctx.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify(message)]);
    },
    subscribe(subscriber) {
      subscribers.add(subscriber);
      return () => {
        subscribers.delete(subscriber);
      };
    },
    onConnectionChange(watcher) {
      watchers.add(watcher);
      return () => {
        watchers.delete(watcher);
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(retryTimer);
      retryTimer = undefined;
      const client = listener;
      listener = undefined;
      setConnected(false);
      await connecting?.catch(() => undefined);
      await client?.end().catch(() => undefined);
    },
  };
}
