import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { GatehouseError } from '../errors/gatehouse-error.js';
import type { RateLimiter, RateLimiterOptions } from './ports.js';

/** Refuses options no engine could honour, before any limiter is built on them. */
export function checkRateLimiterOptions(options: RateLimiterOptions): void {
  if (!Number.isInteger(options.points) || options.points < 1) {
    throw new RangeError('points must be a positive integer');
  }
  if (!Number.isInteger(options.durationSeconds) || options.durationSeconds < 1) {
    throw new RangeError('durationSeconds must be a positive integer');
  }
  if (options.keyPrefix.length === 0) throw new RangeError('keyPrefix must not be empty');
}

/**
 * Wraps a `rate-limiter-flexible` limiter of any engine in the {@link RateLimiter} port. The library
 * rejects with a `RateLimiterRes` when a key is over its limit and with an `Error` when its engine failed;
 * only the first is a decision, the second becomes `ERR_STORE_UNAVAILABLE` so the caller fails closed.
 */
export function flexibleRateLimiter(limiter: RateLimiterAbstract, engine: string): RateLimiter {
  return {
    async consume(key) {
      try {
        await limiter.consume(key);
        return { allowed: true };
      } catch (rejection) {
        if (rejection instanceof RateLimiterRes) {
          return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)) };
        }
        throw new GatehouseError('ERR_STORE_UNAVAILABLE', `The ${engine} rate limiter failed.`, {
          cause: rejection,
        });
      }
    },
  };
}

/**
 * A limiter held in this process's memory: counts are per instance and lost on restart. What memory and
 * SQLite stores offer, since neither is shared by several serving instances.
 *
 * @example
 * const perUser = memoryRateLimiter({ points: 10, durationSeconds: 60, keyPrefix: 'ws-connect-user' });
 * const decision = await perUser.consume(principalKey(principal));
 * if (!decision.allowed) refuse(decision.retryAfterSeconds);
 */
export function memoryRateLimiter(options: RateLimiterOptions): RateLimiter {
  checkRateLimiterOptions(options);
  const limiter = new RateLimiterMemory({
    points: options.points,
    duration: options.durationSeconds,
    keyPrefix: options.keyPrefix,
  });
  return flexibleRateLimiter(limiter, 'in-memory');
}
