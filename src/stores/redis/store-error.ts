import { GatehouseError } from '../../errors/gatehouse-error.js';

/**
 * Redis replies that mean a broken invariant rather than an outage: a key of the wrong type under the
 * prefix, or a failing script. Like a SQLite constraint violation they pass through unchanged and become
 * a logged `server_error`, not a 503 that invites a retry.
 */
const BROKEN_INVARIANT = /^WRONGTYPE|user_script|Error running script/;

/**
 * Failures of the Redis connection (refused, closed, timed out, retries exhausted, commands refused while
 * reconnecting) and server states that pass (`LOADING`, `BUSY`, `READONLY`, `OOM`, `NOAUTH`, …) become
 * `ERR_STORE_UNAVAILABLE` so the boundary fails closed with a 503; the original error stays as `cause`.
 * A `GatehouseError` and the replies of {@link BROKEN_INVARIANT} pass through unchanged.
 */
export function storeError(error: unknown): unknown {
  if (error instanceof GatehouseError) return error;
  if (error instanceof Error && error.name === 'ReplyError' && BROKEN_INVARIANT.test(error.message))
    return error;
  return unavailable(error);
}

/** `ERR_STORE_UNAVAILABLE` caused by `cause`. */
export function unavailable(cause: unknown, message = 'The Redis store failed.'): GatehouseError {
  return new GatehouseError('ERR_STORE_UNAVAILABLE', message, { cause });
}

/**
 * A record the caller should never produce twice (an authorization code hash, a grant id, a refresh token
 * hash): not an outage but a broken invariant, as the SQLite adapter's constraint errors are.
 */
export function duplicateRecord(what: string): Error {
  return new Error(`The Redis store already holds this ${what}.`);
}
