import pg from 'pg';
import { GatehouseError } from '../../errors/gatehouse-error.js';

/**
 * SQLSTATE classes and codes that mean the server cannot serve us right now, rather than that the
 * statement was wrong: connection exceptions (08), refused credentials (28), insufficient resources (53),
 * operator intervention (57: shutdown, crash, still starting, statement timeout), system errors (58), an
 * unknown database (3D000), a read-only server after a failover (25006) and an exhausted lock wait (55P03).
 */
const OUTAGE_CLASSES = new Set(['08', '28', '53', '57', '58']);
const OUTAGE_STATES = new Set(['3D000', '25006', '55P03']);

/** What `pg` and `pg-pool` throw when a connection is lost, cannot be made or times out. */
const CONNECTION_FAILURE =
  /^(Connection terminated|timeout expired|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Client was closed and is not queryable|Cannot use a pool after calling end)/;

/** A Node socket error code (`ECONNREFUSED`, `ECONNRESET`, `ETIMEDOUT`, `ENOTFOUND`, …). */
function socketErrorCode(error: Error): string | undefined {
  const code = (error as NodeJS.ErrnoException).code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : undefined;
}

/** Why `error` is an outage (its SQLSTATE or socket code, or `connection`), or `undefined` when it is not one. */
function outageReason(error: unknown): string | undefined {
  if (error instanceof pg.DatabaseError) {
    const state = error.code ?? '';
    return OUTAGE_CLASSES.has(state.slice(0, 2)) || OUTAGE_STATES.has(state) ? state : undefined;
  }
  if (!(error instanceof Error)) return undefined;
  // Connecting to a name with several addresses fails with every attempt's error at once.
  if (error instanceof AggregateError) {
    return error.errors.map(outageReason).find((reason) => reason !== undefined);
  }
  return socketErrorCode(error) ?? (CONNECTION_FAILURE.test(error.message) ? 'connection' : undefined);
}

/**
 * Connection failures (refused, reset, timed out, terminated) and server states that pass (shutting down,
 * starting up, out of connections or disk, statement timeout) become `ERR_STORE_UNAVAILABLE`, so the
 * boundary fails closed with a 503; the `pg` error stays as `cause` for the log, and `details.reason` names
 * the SQLSTATE or socket code (never the message, which may carry a host or user name).
 *
 * Everything else passes through unchanged, since no retry cures it: a constraint violation is a broken
 * invariant (a duplicate code hash or grant id that the caller should never produce) that becomes a
 * logged `server_error`, as does a statement the schema cannot run (tables missing from a schema opened
 * with `migrate: false`). The ports turn the violations they define (`false`, `ERR_SESSION_CONFLICT`)
 * into their answers before this runs.
 */
export function storeError(error: unknown): unknown {
  if (error instanceof GatehouseError) return error;
  const reason = outageReason(error);
  if (reason === undefined) return error;
  return unavailable(error, { reason });
}

/** Whether `error` means the server or the connection failed (see {@link storeError}). */
export function isOutage(error: unknown): error is Error {
  return outageReason(error) !== undefined;
}

/** `ERR_STORE_UNAVAILABLE` caused by `cause`. */
export function unavailable(
  cause: unknown,
  details?: Record<string, unknown>,
  message = 'The PostgreSQL store failed.',
): GatehouseError {
  return new GatehouseError('ERR_STORE_UNAVAILABLE', message, { cause, ...(details && { details }) });
}

/** Whether `error` is PostgreSQL's unique violation of `constraint`. */
export function isUniqueViolation(error: unknown, constraint: string): boolean {
  return error instanceof pg.DatabaseError && error.code === '23505' && error.constraint === constraint;
}
