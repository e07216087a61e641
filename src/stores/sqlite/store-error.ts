import Database from 'better-sqlite3';
import { GatehouseError } from '../../errors/gatehouse-error.js';

/**
 * Store failures (lock wait exhausted, disk full, I/O error, corrupt file) become `ERR_STORE_UNAVAILABLE`
 * so the boundary fails closed with a 503; the SQLite error stays as `cause` for the log.
 *
 * A constraint violation is not an outage but a broken invariant (a duplicate code hash or grant id that
 * the caller should never produce), so it passes through unchanged and becomes a logged `server_error`
 * rather than a 503 that invites a retry.
 */
export function storeError(error: unknown): unknown {
  if (error instanceof Database.SqliteError && !error.code.startsWith('SQLITE_CONSTRAINT')) {
    return new GatehouseError('ERR_STORE_UNAVAILABLE', 'The SQLite store failed.', {
      cause: error,
      details: { sqliteCode: error.code },
    });
  }
  return error;
}

/** Runs one synchronous store operation as a promise, mapping its failure through {@link storeError}. */
export function guarded<T>(operation: () => T): Promise<T> {
  try {
    return Promise.resolve(operation());
  } catch (error) {
    return Promise.reject(storeError(error));
  }
}
