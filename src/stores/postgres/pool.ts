import type { ClientConfig, CustomTypesConfig, Pool } from 'pg';
import pg from 'pg';

/** How long opening a connection (or waiting for a free one in the pool) may take, in milliseconds. */
export const CONNECT_TIMEOUT_MS = 5_000;
/** How long one statement may run, enforced by the server and by the client, in milliseconds. */
export const STATEMENT_TIMEOUT_MS = 10_000;
/** Idle time before the first TCP keep-alive probe of a connection, in milliseconds. */
const KEEP_ALIVE_DELAY_MS = 10_000;
/** Connections the pool opens at most, by default. */
export const DEFAULT_POOL_SIZE = 10;

const INT8_OID = 20;

/**
 * Type parsers that read `int8` (`bigint` columns, `count(*)`) as a JS number, passed with every query
 * and to the pools this adapter opens: times are epoch milliseconds and counts are small, both far below
 * 2^53. Per query rather than through `pg.types`, which is global to the process and shared with other
 * code (and with a caller's pool) that may expect strings.
 */
export const INT8_AS_NUMBER: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (text: string) => Number(text)
      : pg.types.getTypeParser(oid, format)) as CustomTypesConfig['getTypeParser'],
};

/** What every connection this adapter opens is configured with. */
const CONNECTION_SETTINGS = {
  application_name: 'gatehouse',
  connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  query_timeout: STATEMENT_TIMEOUT_MS,
  statement_timeout: STATEMENT_TIMEOUT_MS,
  // Finds a connection whose server vanished without a FIN (a dead host, a dropped NAT entry).
  keepAlive: true,
  keepAliveInitialDelayMillis: KEEP_ALIVE_DELAY_MS,
} as const satisfies ClientConfig;

/** A pool of at most `max` connections to `url` (settings in the URL win over the defaults above). */
export function createPool(url: string, max: number): Pool {
  return new pg.Pool({ connectionString: url, max, ...CONNECTION_SETTINGS, types: INT8_AS_NUMBER });
}

/**
 * The settings for a dedicated connection to the server `pool` connects to (the cluster bus's `LISTEN`
 * connection), also when the pool is the caller's: its connection settings, with the adapter's keep-alive
 * and a bounded connect timeout when it set none.
 */
export function dedicatedConnectionConfig(pool: Pool): ClientConfig {
  const options = pool.options;
  return {
    ...options,
    application_name: options.application_name ?? CONNECTION_SETTINGS.application_name,
    connectionTimeoutMillis: options.connectionTimeoutMillis || CONNECT_TIMEOUT_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: options.keepAliveInitialDelayMillis || KEEP_ALIVE_DELAY_MS,
  };
}
