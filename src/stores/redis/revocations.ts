import type { RevocationRecord, RevocationStore } from '../ports.js';
import { sweepLimit } from '../sweep-limit.js';
import type { RedisContext } from './context.js';
import { DELETE_EXPIRED_MEMBERS, EXTEND } from './lua.js';
import { type Fields, num, text, toFields, toList } from './replies.js';
import { ttlMs } from './ttl.js';

/*
 * An entry is the hash `revocation:<kind>:<id>`; `revocations:by-time` scores each `<kind>:<id>` by
 * `revokedAt` (for `listSince`, which then comes out ordered by time, kind and id) and
 * `revocations:by-expiry` by `expiresAt` (for the sweep). `revocations:watermark` is an `INCR`ed counter
 * without a TTL.
 */

/**
 * Lua: `add_revocation(stem, byTime, byExpiry, watermark, kind, id, revokedAt, expiresAt, ttl)` adds an
 * entry unless one of the same kind and id stands (the first stands), moving the watermark only when it
 * added one. Shared with the grant scripts, which revoke a grant and add its entry in one step.
 */
export const ADD_REVOCATION = `${EXTEND}
local function add_revocation(stem, by_time, by_expiry, watermark, kind, id, revoked_at, expires_at, ttl)
  local member = kind .. ':' .. id
  local key = stem .. member
  if redis.call('EXISTS', key) == 1 then return 0 end
  redis.call('HSET', key, 'kind', kind, 'id', id, 'revokedAt', revoked_at, 'expiresAt', expires_at)
  redis.call('PEXPIRE', key, ttl)
  redis.call('ZADD', by_time, revoked_at, member)
  extend(by_time, ttl)
  redis.call('ZADD', by_expiry, expires_at, member)
  extend(by_expiry, ttl)
  redis.call('INCR', watermark)
  return 1
end
`;

/** KEYS: by-time index, by-expiry index, watermark. ARGV: entry stem, kind, id, revokedAt, expiresAt, TTL. */
const ADD = `${ADD_REVOCATION}
return add_revocation(ARGV[1], KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]))
`;

/** KEYS: by-time index. ARGV: entry stem, since. Entries revoked at or after `since`, in index order. */
const LIST_SINCE = `
local entries = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '+inf')) do
  local entry = redis.call('HGETALL', ARGV[1] .. member)
  if #entry > 0 then entries[#entries + 1] = entry end
end
return entries
`;

function toRecord(fields: Fields): RevocationRecord {
  return {
    kind: text(fields, 'kind') as RevocationRecord['kind'],
    id: text(fields, 'id'),
    revokedAt: num(fields, 'revokedAt'),
    expiresAt: num(fields, 'expiresAt'),
  };
}

export function createRedisRevocationStore(ctx: RedisContext): RevocationStore {
  const { keys } = ctx;
  const add = ctx.script('revocations_add', ADD);
  const listSince = ctx.script('revocations_list_since', LIST_SINCE);
  const deleteExpired = ctx.script('delete_expired_members', DELETE_EXPIRED_MEMBERS);

  return {
    async add(record) {
      await add(
        [keys.revocationsByTime, keys.revocationsByExpiry, keys.revocationWatermark],
        [
          keys.revocation,
          record.kind,
          record.id,
          record.revokedAt,
          record.expiresAt,
          ttlMs(record.expiresAt, record.revokedAt),
        ],
      );
    },
    async listSince(since, now) {
      const entries = toList(await listSince([keys.revocationsByTime], [keys.revocation, since]));
      return entries.flatMap((item) => {
        const fields = toFields(item);
        if (fields === undefined) return [];
        const record = toRecord(fields);
        return record.expiresAt > now ? [record] : [];
      });
    },
    async watermark() {
      const value = await ctx.run((client) => client.get(keys.revocationWatermark));
      return value === null ? 0 : Number(value);
    },
    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      if (max === 0) return 0;
      return Number(
        await deleteExpired([keys.revocationsByExpiry, keys.revocationsByTime], [keys.revocation, now, max]),
      );
    },
  };
}
