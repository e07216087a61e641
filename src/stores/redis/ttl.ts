/**
 * How long every expiring key outlives its logical deadline, in milliseconds: one hour.
 *
 * A TTL only reclaims storage. Whether a record is live is always decided from its stored times and the
 * `now` the caller passes (the injected clock), never from whether Redis still holds the key. The margin
 * lets the sweepers (`deleteExpired`) remove a record before Redis drops it silently, so a session's
 * upstream is still reaped, and it absorbs a skew between the injected clock and the server's.
 */
export const TTL_MARGIN_MS = 60 * 60 * 1000;

/**
 * The TTL, in milliseconds, of a key whose record ends at `deadline`, measured from `from` — both times
 * from the injected clock (`expiresAt - createdAt`, `deadline - now`), never the wall clock — plus
 * {@link TTL_MARGIN_MS}. A deadline already past still gets the margin. Always a positive integer, as
 * `PEXPIRE` needs.
 */
export function ttlMs(deadline: number, from: number): number {
  return Math.ceil(Math.max(0, deadline - from)) + TTL_MARGIN_MS;
}
