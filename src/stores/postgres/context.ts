import type { Pool, PoolClient, QueryConfig, QueryResult, QueryResultRow } from 'pg';
import { INT8_AS_NUMBER } from './pool.js';
import { isOutage, storeError, unavailable } from './store-error.js';
import { qualifiedTables, type Tables } from './tables.js';

/** Runs one SQL statement with positional parameters (`$1`, `$2`, …). */
export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(
    text: string,
    values?: readonly unknown[],
  ): Promise<QueryResult<R>>;
}

/** What every port of the PostgreSQL adapter works through. */
export interface PostgresContext extends Queryable {
  readonly schema: string;
  readonly tables: Tables;
  /**
   * Runs `work` in one transaction on one connection: committed when it resolves, rolled back when it
   * throws. Its failure is mapped through {@link storeError} (a constraint violation passes unchanged, so
   * the caller can still recognise it).
   */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
}

/** How a transaction runs. */
export interface TransactionOptions {
  /**
   * The longest one statement of the transaction may run (or wait for a lock), server and client side, in
   * milliseconds. Default: the connection's (10 s on a pool these stores opened).
   */
  readonly statementTimeoutMs?: number;
}

function run<R extends QueryResultRow>(
  db: Pool | PoolClient,
  text: string,
  values: readonly unknown[] = [],
  timeoutMs?: number,
): Promise<QueryResult<R>> {
  const config: QueryConfig & { query_timeout?: number } = {
    text,
    values: [...values],
    types: INT8_AS_NUMBER,
    ...(timeoutMs !== undefined && { query_timeout: timeoutMs }),
  };
  return db.query<R>(config);
}

/**
 * Runs `work` in one transaction on a connection of `pool` (see {@link PostgresContext.transaction}), for
 * the ports and for the migrations, which run before any context exists.
 */
export async function inTransaction<T>(
  pool: Pool,
  work: (tx: Queryable) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const timeoutMs = options.statementTimeoutMs;
  let client: PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw storeError(error);
  }
  // A connection that failed, or whose ROLLBACK failed, is in an unknown state: the pool destroys it (the
  // server rolls back what it held) instead of lending it out again with a transaction possibly open. A
  // ROLLBACK is not even tried after an outage: queued behind a statement the dead server never answers,
  // it would wait as long as that one did.
  let broken: Error | undefined;
  try {
    await run(client, 'BEGIN');
    if (timeoutMs !== undefined) {
      await run(client, `SET LOCAL statement_timeout = ${Math.floor(timeoutMs)}`, [], timeoutMs);
    }
    const result = await work({ query: (text, values) => run(client, text, values, timeoutMs) });
    await run(client, 'COMMIT');
    return result;
  } catch (error) {
    broken = isOutage(error) ? error : await rollback(client);
    throw storeError(error);
  } finally {
    client.release(broken);
  }
}

/** Rolls back the transaction on `client`; resolves with the error when that failed too. */
function rollback(client: PoolClient): Promise<Error | undefined> {
  return run(client, 'ROLLBACK').then(
    () => undefined,
    (error: unknown) => (error instanceof Error ? error : new Error('ROLLBACK failed')),
  );
}

/**
 * A context over `pool` and the tables of `schema`. Every statement reads `int8` as a number and maps its
 * failure through {@link storeError}; once `isClosed()` holds, every call rejects with
 * `ERR_STORE_UNAVAILABLE` (also when the caller still owns the pool).
 */
export function createPostgresContext(pool: Pool, schema: string, isClosed: () => boolean): PostgresContext {
  const ensureOpen = (): void => {
    if (isClosed()) throw unavailable(undefined, undefined, 'The PostgreSQL stores are closed.');
  };

  return {
    schema,
    tables: qualifiedTables(schema),
    async query<R extends QueryResultRow>(text: string, values?: readonly unknown[]) {
      ensureOpen();
      try {
        return await run<R>(pool, text, values);
      } catch (error) {
        throw storeError(error);
      }
    },
    transaction(work) {
      ensureOpen();
      return inTransaction(pool, work);
    },
  };
}
