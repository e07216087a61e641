import type { SigningKeyRecord, SigningKeyStore } from '../ports.js';
import { sweepLimit } from '../sweep-limit.js';
import type { RedisContext } from './context.js';
import { DELETE_EXPIRED_MEMBERS, EXTEND } from './lua.js';
import { byteOrder, toList } from './replies.js';
import { ttlMs } from './ttl.js';

/*
 * A signing key is the JSON string `signing-key:<kid>`; `signing-keys:by-expiry` scores the kids by
 * `expiresAt` for `list` and the sweep. There are only ever a handful.
 */

/** KEYS: key, expiry index. ARGV: kid, record JSON, expiresAt, TTL. Inserts only a new kid. */
const CREATE = `${EXTEND}
if not redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[4], 'NX') then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
extend(KEYS[2], tonumber(ARGV[4]))
return 1
`;

/** KEYS: expiry index. ARGV: key stem, now. Every key expiring after `now`. */
const LIST = `
local values = {}
for _, kid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf')) do
  local value = redis.call('GET', ARGV[1] .. kid)
  if value then values[#values + 1] = value end
end
return values
`;

export function createRedisSigningKeyStore(ctx: RedisContext): SigningKeyStore {
  const { keys } = ctx;
  const create = ctx.script('signing_keys_create', CREATE);
  const list = ctx.script('signing_keys_list', LIST);
  const deleteExpired = ctx.script('delete_expired_members', DELETE_EXPIRED_MEMBERS);

  return {
    async list(now) {
      const values = toList(await list([keys.signingKeysByExpiry], [keys.signingKey, now]));
      return values
        .map((value) => JSON.parse(String(value)) as SigningKeyRecord)
        .filter((key) => key.expiresAt > now)
        .sort((a, b) => b.createdAt - a.createdAt || byteOrder(a.kid, b.kid));
    },
    async create(key) {
      const record: SigningKeyRecord = {
        kid: key.kid,
        alg: key.alg,
        publicJwk: key.publicJwk,
        privateJwkCiphertext: key.privateJwkCiphertext,
        createdAt: key.createdAt,
        retiresAt: key.retiresAt,
        expiresAt: key.expiresAt,
      };
      const created = await create(
        [keys.signingKey + key.kid, keys.signingKeysByExpiry],
        [key.kid, JSON.stringify(record), key.expiresAt, ttlMs(key.expiresAt, key.createdAt)],
      );
      return created === 1;
    },
    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      if (max === 0) return 0;
      return Number(await deleteExpired([keys.signingKeysByExpiry], [keys.signingKey, now, max]));
    },
  };
}
