import type { EphemeralStore } from '../ports.js';
import { sweepLimit } from '../sweep-limit.js';
import type { RedisContext } from './context.js';
import { ephemeralMember } from './keys.js';
import { DELETE_EXPIRED_MEMBERS, EXTEND } from './lua.js';
import { TTL_MARGIN_MS } from './ttl.js';

/*
 * An ephemeral record is the hash `ephemeral:<namespace>:<key>` ({ value JSON, expiresAt });
 * `ephemerals:by-expiry` scores each `<namespace>:<key>` by `expiresAt` for the sweep.
 *
 * The TTL is the one exception to "measured between injected times": `put` is given no `now`, only
 * `expiresAt`, so the script measures the remaining time against the Redis server's clock and adds the
 * margin. It only reclaims storage — `get`, `take` and the sweep decide expiry from `expiresAt` and the
 * caller's `now` — and an injected clock running behind the server's still gets at least the margin.
 */

/** KEYS: record, expiry index. ARGV: member, value JSON, expiresAt, margin. Inserts or replaces. */
const PUT = `${EXTEND}
local time = redis.call('TIME')
local server_now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = math.max(tonumber(ARGV[3]) - server_now, 0) + tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'value', ARGV[2], 'expiresAt', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
extend(KEYS[2], ttl)
return 1
`;

/**
 * KEYS: record, expiry index. ARGV: member, now, whether to delete ('1' for take). The value while live at
 * `now`; a take deletes it in the same step, so of concurrent takes exactly one gets it.
 */
const READ = `
local f = redis.call('HMGET', KEYS[1], 'value', 'expiresAt')
if not f[1] or tonumber(f[2]) <= tonumber(ARGV[2]) then return false end
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return f[1]
`;

/** KEYS: record, expiry index. ARGV: member. */
const DELETE = `
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
`;

export function createRedisEphemeralStore(ctx: RedisContext): EphemeralStore {
  const { keys } = ctx;
  const put = ctx.script('ephemeral_put', PUT);
  const read = ctx.script('ephemeral_read', READ);
  const remove = ctx.script('ephemeral_delete', DELETE);
  const deleteExpired = ctx.script('delete_expired_members', DELETE_EXPIRED_MEMBERS);
  const address = (namespace: string, key: string): [string[], string] => {
    const member = ephemeralMember(namespace, key);
    return [[keys.ephemeral + member, keys.ephemeralsByExpiry], member];
  };
  const parse = (reply: unknown): Record<string, unknown> | undefined =>
    typeof reply === 'string' ? (JSON.parse(reply) as Record<string, unknown>) : undefined;

  return {
    async put(namespace, key, value, expiresAt) {
      const [recordKeys, member] = address(namespace, key);
      await put(recordKeys, [member, JSON.stringify(value), expiresAt, TTL_MARGIN_MS]);
    },
    async get(namespace, key, now) {
      const [recordKeys, member] = address(namespace, key);
      return parse(await read(recordKeys, [member, now, '0']));
    },
    async take(namespace, key, now) {
      const [recordKeys, member] = address(namespace, key);
      return parse(await read(recordKeys, [member, now, '1']));
    },
    async delete(namespace, key) {
      const [recordKeys, member] = address(namespace, key);
      return (await remove(recordKeys, [member])) === 1;
    },
    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      if (max === 0) return 0;
      return Number(await deleteExpired([keys.ephemeralsByExpiry], [keys.ephemeral, now, max]));
    },
  };
}
