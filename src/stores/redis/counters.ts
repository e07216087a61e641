import type { CounterResult, CounterStore } from '../ports.js';
import type { RedisContext } from './context.js';
import { toList } from './replies.js';
import { ttlMs } from './ttl.js';

/*
 * A counter is the hash `counter:<key>` ({ count, resetAt }): the window's end is kept with the count, so a
 * window is decided by the injected clock, and the TTL (the window plus the margin) only reclaims the key.
 * No `deleteExpired`: the optional sweep is for backends without native expiry.
 */

/**
 * KEYS: counter. ARGV: now, the end of a window starting now, its TTL. A key whose window ended at `now`
 * starts again at 1; otherwise the count grows and the window stays. Returns { count, resetAt }.
 */
const INCREMENT = `
local reset_at = redis.call('HGET', KEYS[1], 'resetAt')
if not reset_at or tonumber(reset_at) <= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'count', 1, 'resetAt', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1, ARGV[2]}
end
return {redis.call('HINCRBY', KEYS[1], 'count', 1), reset_at}
`;

function toResult(count: unknown, resetAt: unknown): CounterResult {
  return { count: Number(count), resetAt: Number(resetAt) };
}

export function createRedisCounterStore(ctx: RedisContext): CounterStore {
  const { keys } = ctx;
  const increment = ctx.script('counters_increment', INCREMENT);

  return {
    async increment(key, windowMs, now) {
      const resetAt = now + windowMs;
      const [count, windowEnd] = toList(
        await increment([keys.counter + key], [now, resetAt, ttlMs(resetAt, now)]),
      );
      return toResult(count, windowEnd);
    },
    async peek(key, now) {
      const [count, resetAt] = await ctx.run((client) =>
        client.hmget(keys.counter + key, 'count', 'resetAt'),
      );
      if (count === null || count === undefined || resetAt === null || resetAt === undefined)
        return undefined;
      return Number(resetAt) > now ? toResult(count, resetAt) : undefined;
    },
    async reset(key) {
      await ctx.run((client) => client.del(keys.counter + key));
    },
  };
}
