import type { UpstreamTokenRecord, UpstreamTokenStore } from '../ports.js';
import type { RedisContext } from './context.js';
import { type Fields, num, optionalNum, recordOf, text } from './replies.js';

/*
 * A federated user's upstream tokens are the hash `upstream-token:<principalKey>:<provider>`, without a TTL:
 * the record has no end of its own (its refresh token may outlive any access token) and goes when the
 * user's account or connection is removed.
 */

/**
 * KEYS: record. ARGV: expected version, principalKey, provider, ciphertext, updatedAt, accessExpiresAt or
 * ''. Creates at version 1 when the expected version is 0 and nothing is stored; replaces when the stored
 * version is the expected one.
 */
const PUT = `
local version = redis.call('HGET', KEYS[1], 'version')
local expected = tonumber(ARGV[1])
if expected == 0 then
  if version then return false end
elseif not version or tonumber(version) ~= expected then
  return false
end
redis.call('HSET', KEYS[1], 'principalKey', ARGV[2], 'provider', ARGV[3], 'ciphertext', ARGV[4],
  'updatedAt', ARGV[5], 'version', expected + 1)
if ARGV[6] == '' then
  redis.call('HDEL', KEYS[1], 'accessExpiresAt')
else
  redis.call('HSET', KEYS[1], 'accessExpiresAt', ARGV[6])
end
return redis.call('HGETALL', KEYS[1])
`;

function toRecord(fields: Fields): UpstreamTokenRecord {
  return {
    principalKey: text(fields, 'principalKey'),
    provider: text(fields, 'provider'),
    ciphertext: text(fields, 'ciphertext'),
    ...optionalNum(fields, 'accessExpiresAt'),
    updatedAt: num(fields, 'updatedAt'),
    version: num(fields, 'version'),
  };
}

export function createRedisUpstreamTokenStore(ctx: RedisContext): UpstreamTokenStore {
  const { keys } = ctx;
  const put = ctx.script('upstream_tokens_put', PUT);

  return {
    async get(principalKey, provider) {
      const key = keys.upstreamToken(principalKey) + provider;
      return recordOf(await ctx.run((client) => client.hgetall(key)), toRecord);
    },
    async put(record, expectedVersion) {
      const reply = await put(
        [keys.upstreamToken(record.principalKey) + record.provider],
        [
          expectedVersion,
          record.principalKey,
          record.provider,
          record.ciphertext,
          record.updatedAt,
          record.accessExpiresAt ?? '',
        ],
      );
      return recordOf(reply, toRecord);
    },
    async delete(principalKey, provider) {
      const key = keys.upstreamToken(principalKey) + provider;
      return (await ctx.run((client) => client.del(key))) === 1;
    },
  };
}
