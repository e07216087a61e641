import type { AuthorizationCodeRecord, AuthorizationCodeStore } from '../ports.js';
import { sweepLimit } from '../sweep-limit.js';
import type { RedisContext } from './context.js';
import { DELETE_EXPIRED_MEMBERS, EXTEND } from './lua.js';
import { toList } from './replies.js';
import { duplicateRecord } from './store-error.js';
import { ttlMs } from './ttl.js';

/*
 * A code is the hash `code:<codeHash>` — the record as JSON, `expiresAt`, and `consumedAt` once consumed —
 * kept until it expires so a replay is recognised; `codes:by-expiry` scores the hashes for the sweep.
 */

/** KEYS: code, expiry index. ARGV: code hash, record JSON, expiresAt, TTL. Inserts only a new hash. */
const CREATE = `${EXTEND}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'record', ARGV[2], 'expiresAt', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
extend(KEYS[2], tonumber(ARGV[4]))
return 1
`;

/**
 * KEYS: code. ARGV: now. The first call inside the code's lifetime marks it consumed; later ones see the
 * mark. The check and the mark are one step, so of concurrent calls exactly one is `consumed`.
 */
const CONSUME = `
local f = redis.call('HMGET', KEYS[1], 'record', 'expiresAt', 'consumedAt')
if not f[1] or tonumber(f[2]) <= tonumber(ARGV[1]) then return false end
if f[3] then return {'replayed', f[1]} end
redis.call('HSET', KEYS[1], 'consumedAt', ARGV[1])
return {'consumed', f[1]}
`;

export function createRedisAuthorizationCodeStore(ctx: RedisContext): AuthorizationCodeStore {
  const { keys } = ctx;
  const create = ctx.script('codes_create', CREATE);
  const consume = ctx.script('codes_consume', CONSUME);
  const deleteExpired = ctx.script('delete_expired_members', DELETE_EXPIRED_MEMBERS);

  return {
    async create(record) {
      const created = await create(
        [keys.code + record.codeHash, keys.codesByExpiry],
        [
          record.codeHash,
          JSON.stringify(record),
          record.expiresAt,
          ttlMs(record.expiresAt, record.createdAt),
        ],
      );
      if (created !== 1) throw duplicateRecord('authorization code hash');
    },
    async consume(codeHash, now) {
      const [status, json] = toList(await consume([keys.code + codeHash], [now]));
      if (status !== 'consumed' && status !== 'replayed') return undefined;
      return { status, record: JSON.parse(String(json)) as AuthorizationCodeRecord };
    },
    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      if (max === 0) return 0;
      return Number(await deleteExpired([keys.codesByExpiry], [keys.code, now, max]));
    },
  };
}
