import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

/** The answer to one `consume`: allowed, or refused with how long until the next point frees up. */
export type RateLimitDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/**
 * A fixed-window counter per key: each `consume` spends one point; when a key has spent all its points in
 * the window, `consume` answers `allowed: false` until the window ends. Backends (memory now, shared
 * stores later) are factories returning this interface.
 *
 * A backend that cannot answer (a shared store that is down) rejects with its error: callers fail
 * closed, they never read a failure as "allowed".
 */
export interface RateLimiter {
  consume(key: string): Promise<RateLimitDecision>;
}

export interface MemoryRateLimiterOptions {
  /** Points (allowed events) per key per window. */
  readonly points: number;
  /** Length of the window, in seconds. */
  readonly durationSeconds: number;
  /** Prefix that keeps limiters sharing one backend apart. Default `gatehouse`. */
  readonly keyPrefix?: string;
}

/**
 * A rate limiter held in this process's memory (`rate-limiter-flexible`'s `RateLimiterMemory`): counts are
 * per instance and lost on restart, so several instances each allow `points` per window.
 *
 * @example
 * const perUser = createMemoryRateLimiter({ points: 10, durationSeconds: 60 });
 * const decision = await perUser.consume(`user:${principalKey(principal)}`);
 * if (!decision.allowed) refuse(decision.retryAfterSeconds);
 */
export function createMemoryRateLimiter(options: MemoryRateLimiterOptions): RateLimiter {
  if (!Number.isInteger(options.points) || options.points < 1) {
    throw new RangeError('points must be a positive integer');
  }
  if (!Number.isInteger(options.durationSeconds) || options.durationSeconds < 1) {
    throw new RangeError('durationSeconds must be a positive integer');
  }
  const limiter = new RateLimiterMemory({
    points: options.points,
    duration: options.durationSeconds,
    keyPrefix: options.keyPrefix ?? 'gatehouse',
  });
  return {
    async consume(key) {
      try {
        await limiter.consume(key);
        return { allowed: true };
      } catch (rejection) {
        // rate-limiter-flexible rejects with a RateLimiterRes when the key is over its limit, and with an
        // Error when the backend failed; only the first is a decision.
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)) };
      }
    },
  };
}
