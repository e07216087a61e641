import { tokenHash } from '../crypto/fingerprint.js';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { OAuthError } from '../errors/oauth-error.js';
import type { Principal } from '../identity/principal.js';
import type { Clock } from '../ops/clock.js';
import { createIssuerRouter } from './router.js';
import { assertTokenShape, rejectToken, type TokenVerifier } from './verifier.js';

export interface VerificationCacheOptions {
  /** Verifiers to route tokens to, by exact `iss`. Several may share one issuer; they are tried in order. */
  verifiers: readonly TokenVerifier[];
  /** Verified tokens kept; the least recently used is evicted beyond this. `0` disables caching. */
  maxEntries: number;
  /** Longest time one entry lives, in milliseconds, whatever the token's `exp`. */
  maxTtlMs: number;
  clock: Clock;
}

export interface VerificationResult {
  principal: Principal;
  /** True when the answer came from the cache without running a verifier. */
  cacheHit: boolean;
}

export interface VerificationCacheStats {
  /** Answers served from the cache. */
  hits: number;
  /** Verifications started (one per uncached token, however many callers waited for it). */
  misses: number;
  /** Callers that joined a verification already in flight for the same token. */
  coalesced: number;
  /** Entries held now (expired ones are dropped lazily). */
  size: number;
}

export interface VerificationCache {
  /**
   * Verifies a bearer token, from the cache when possible. Rejects like {@link TokenVerifier.verify};
   * a token whose `iss` no verifier accepts is `invalid_token` with reason `unknown_issuer`.
   */
  verify(token: string): Promise<VerificationResult>;
  stats(): VerificationCacheStats;
  /** Drops every entry, and makes verifications in flight not store their result. */
  clear(): void;
}

interface Entry {
  principal: Principal;
  /** Epoch milliseconds; the entry is never returned at or after this instant. */
  expiresAtMs: number;
}

/**
 * Routes each token to the verifier for its issuer and remembers the result, keyed by the token's
 * SHA-256. An entry lives until `min(exp, insertion + maxTtlMs)` and never longer; failures are never
 * cached; concurrent calls for the same uncached token share one verification.
 *
 * Routing is the issuer router's ({@link createIssuerRouter}): the *unverified* `iss` only chooses
 * verifiers, and the chosen verifier checks it again among the signed claims.
 *
 * @example
 * const cache = createVerificationCache({ verifiers, maxEntries: 10_000, maxTtlMs: 300_000, clock: systemClock });
 * const { principal } = await cache.verify(token);
 */
export function createVerificationCache(options: VerificationCacheOptions): VerificationCache {
  const { clock, maxTtlMs } = options;
  if (!Number.isInteger(options.maxEntries) || options.maxEntries < 0) {
    throw new GatehouseError('ERR_CONFIG_INVALID', 'maxEntries must be a non-negative integer.');
  }
  if (!Number.isFinite(maxTtlMs) || maxTtlMs <= 0) {
    throw new GatehouseError('ERR_CONFIG_INVALID', 'maxTtlMs must be a positive number of milliseconds.');
  }
  const maxEntries = options.maxEntries;

  const router = createIssuerRouter(options.verifiers);

  // Map iteration order is insertion order: re-inserting on every hit keeps the least recently used first.
  const entries = new Map<string, Entry>();
  const inFlight = new Map<string, Promise<Principal>>();
  let generation = 0;
  let hits = 0;
  let misses = 0;
  let coalesced = 0;

  async function verifyUncached(token: string): Promise<Principal> {
    const candidates = router.route(token);
    let rejection: OAuthError | undefined;
    let unavailable: GatehouseError | undefined;
    for (const verifier of candidates) {
      try {
        return await verifier.verify(token);
      } catch (error) {
        if (error instanceof OAuthError) {
          // The most telling rejection wins: "wrong algorithm" only means this candidate was not the one.
          if (
            rejection === undefined ||
            (rejection.reason === 'alg_not_allowed' && error.reason !== 'alg_not_allowed')
          ) {
            rejection = error;
          }
        } else if (error instanceof GatehouseError) {
          unavailable ??= error;
        } else {
          throw error;
        }
      }
    }
    // A candidate whose keys could not be fetched might have accepted the token: fail closed with 503.
    throw unavailable ?? rejection ?? rejectToken('unknown_issuer', 'No verifier accepted the token.');
  }

  function store(key: string, principal: Principal): void {
    if (maxEntries === 0) return;
    const now = clock.now();
    const expiresAtMs = Math.min(principal.expiresAt * 1000, now + maxTtlMs);
    if (expiresAtMs <= now) return;
    entries.delete(key);
    entries.set(key, { principal, expiresAtMs });
    for (const oldest of entries.keys()) {
      if (entries.size <= maxEntries) break;
      entries.delete(oldest);
    }
  }

  return {
    async verify(token: string): Promise<VerificationResult> {
      assertTokenShape(token);
      const key = tokenHash(token);

      const entry = entries.get(key);
      if (entry !== undefined) {
        entries.delete(key);
        if (clock.now() < entry.expiresAtMs) {
          entries.set(key, entry);
          hits += 1;
          return { principal: entry.principal, cacheHit: true };
        }
      }

      const pending = inFlight.get(key);
      if (pending !== undefined) {
        coalesced += 1;
        return { principal: await pending, cacheHit: false };
      }

      misses += 1;
      const startedIn = generation;
      const verification = verifyUncached(token);
      inFlight.set(key, verification);
      try {
        const principal = await verification;
        if (generation === startedIn) store(key, principal);
        return { principal, cacheHit: false };
      } finally {
        if (inFlight.get(key) === verification) inFlight.delete(key);
      }
    },
    stats: () => ({ hits, misses, coalesced, size: entries.size }),
    clear(): void {
      generation += 1;
      entries.clear();
      inFlight.clear();
    },
  };
}
