import type { ClientBase, Pool, PoolClient } from 'pg';

/**
 * Where a transaction runs: a `pg.Pool` (a connection is checked out and always released) or a connected
 * `pg.Client` / `pg.PoolClient` that is idle, not inside a transaction of its own (the caller keeps it).
 */
export type PostgresConnection = Pool | ClientBase;

function isPool(db: PostgresConnection): db is Pool {
  return 'totalCount' in db && 'idleCount' in db;
}

/**
 * Runs `setup` then `fn` in one transaction: commit when both succeed, rollback when either throws.
 * A connection checked out of a pool is always released — destroyed rather than reused when `BEGIN` or
 * `ROLLBACK` failed, because its transaction state is then unknown and the next borrower must never
 * inherit a half-open transaction (or the role and claims set inside it).
 */
export async function runInTransaction<T>(
  db: PostgresConnection,
  setup: (client: ClientBase) => Promise<void>,
  fn: (client: ClientBase) => Promise<T>,
): Promise<T> {
  const pooled = isPool(db);
  const client: ClientBase = pooled ? await db.connect() : db;
  let broken: Error | undefined;
  try {
    try {
      await client.query('BEGIN');
    } catch (error) {
      broken = error instanceof Error ? error : new Error(String(error));
      throw error;
    }
    try {
      await setup(client);
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackError: unknown) => {
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      });
      throw error;
    }
  } finally {
    if (pooled) (client as PoolClient).release(broken);
  }
}
