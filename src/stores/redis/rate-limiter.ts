import type { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import type { RateLimiter, RateLimiterOptions } from '../ports.js';
import { checkRateLimiterOptions, flexibleRateLimiter } from '../rate-limiter.js';
import type { KeySpace } from './keys.js';
import { unavailable } from './store-error.js';

/**
 * `Stores.rateLimiter` on Redis: `rate-limiter-flexible`'s `RateLimiterRedis` on the command client, so
 * every instance on the prefix shares the counts. Its keys are `<prefix>rate-limit:<options.keyPrefix>:<key>`
 * (the `rate-limit:` kind keeps them apart from the records) and expire with their window. While Redis is
 * not ready it refuses at once (`rejectIfRedisNotReady`), which the port reports as `ERR_STORE_UNAVAILABLE`:
 * callers fail closed. Throws `RangeError` for options no window could honour.
 */
export function redisRateLimiter(
  client: Redis,
  keys: KeySpace,
  isClosed: () => boolean,
): (options: RateLimiterOptions) => RateLimiter {
  return (options) => {
    checkRateLimiterOptions(options);
    const limiter = flexibleRateLimiter(
      new RateLimiterRedis({
        storeClient: client,
        keyPrefix: `${keys.rateLimit}${options.keyPrefix}`,
        points: options.points,
        duration: options.durationSeconds,
        rejectIfRedisNotReady: true,
      }),
      'Redis',
    );
    return {
      consume: (key) =>
        isClosed()
          ? Promise.reject(unavailable(undefined, 'The Redis stores are closed.'))
          : limiter.consume(key),
    };
  };
}
