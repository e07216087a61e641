import { GatehouseError } from '../errors/gatehouse-error.js';
import type { Clock } from '../ops/clock.js';
import type { CounterStore } from '../stores/ports.js';
import type { ClientLookup } from './cimd.js';

/** How many metadata documents may be fetched in a fixed one-minute window. */
export interface CimdFetchLimits {
  /** Fetches caused by one client address. Default 10. */
  readonly perAddressPerMinute: number;
  /** Fetches from one target host, whoever causes them. Default 30. */
  readonly perHostPerMinute: number;
}

export const DEFAULT_CIMD_FETCH_LIMITS: CimdFetchLimits = Object.freeze({
  perAddressPerMinute: 10,
  perHostPerMinute: 30,
});

const MINUTE_MS = 60_000;

/**
 * The `beforeFetch` of `createCimdResolver`: refuses a metadata-document fetch once the address that
 * caused it, or the host it would reach, has had its share this minute. Without it anyone could make
 * Gatehouse fetch public URLs on demand — `/oauth/authorize?client_id=https://victim.example/<random>` —
 * since the draft forbids caching failed fetches. The address is counted first, so one address cannot
 * spend a host's budget beyond its own. Counters live in the store, so instances sharing one store share
 * the limits. A lookup nobody attributed (no `clientAddress`) meets the host limit only.
 *
 * The host is the URL's host name, not its registrable domain: an attacker spreading requests over
 * `a1.victim.example`, `a2.victim.example`… reaches each host's limit separately.
 *
 * @throws GatehouseError `ERR_CONFIG_INVALID` at construction for a limit that is not a positive integer;
 *   the returned function throws `ERR_RATE_LIMITED` with `retryAfterSeconds` and `details.limit`
 *   (`cimd-fetch-address` or `cimd-fetch-host`, as in `ratelimit.rejected`).
 * @example
 * ```ts
 * const cimd = createCimdResolver({
 *   fetch, clock, beforeFetch: createCimdFetchLimiter({ counters: stores.counters, clock }),
 * });
 * ```
 */
export function createCimdFetchLimiter(options: {
  counters: CounterStore;
  clock: Clock;
  limits?: CimdFetchLimits;
}): (url: URL, lookup: ClientLookup) => Promise<void> {
  const { counters, clock } = options;
  const limits = options.limits ?? DEFAULT_CIMD_FETCH_LIMITS;
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 1) {
      throw new GatehouseError('ERR_CONFIG_INVALID', `CIMD fetch limit ${name} must be a positive integer.`);
    }
  }

  const spend = async (key: string, limit: number, name: string, message: string): Promise<void> => {
    const now = clock.now();
    const { count, resetAt } = await counters.increment(key, MINUTE_MS, now);
    if (count <= limit) return;
    throw new GatehouseError('ERR_RATE_LIMITED', message, {
      retryAfterSeconds: Math.max(1, Math.ceil((resetAt - now) / 1000)),
      details: { limit: name },
    });
  };

  return async (url, lookup) => {
    if (lookup.clientAddress !== undefined) {
      await spend(
        `cimd:address:${lookup.clientAddress}`,
        limits.perAddressPerMinute,
        'cimd-fetch-address',
        'Too many client metadata documents fetched for this address.',
      );
    }
    await spend(
      `cimd:host:${url.hostname.toLowerCase()}`,
      limits.perHostPerMinute,
      'cimd-fetch-host',
      'Too many client metadata documents fetched from this host.',
    );
  };
}
