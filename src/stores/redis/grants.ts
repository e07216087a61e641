import type { GrantRecord, GrantStore, PrincipalSnapshot } from '../ports.js';
import { snapshotPrincipalKey } from '../principal-key.js';
import { sweepLimit } from '../sweep-limit.js';
import type { RedisContext } from './context.js';
import { listPage } from './list-page.js';
import { EXTEND, LIST_PAGE, MEMBER_HASHES } from './lua.js';
import {
  byCreatedAtThenId,
  type Fields,
  hashArgs,
  num,
  optionalNum,
  optionalText,
  recordOf,
  recordsOf,
  text,
  toFields,
  toList,
} from './replies.js';
import { ADD_REVOCATION } from './revocations.js';
import { duplicateRecord } from './store-error.js';
import { TTL_MARGIN_MS, ttlMs } from './ttl.js';

/*
 * A grant is the hash `grant:<id>`, with a TTL of its lifetime plus the margin, set once at creation.
 * Every refresh token it issued is the hash `refresh-token:<tokenHash>` ({ grantId, generation }), listed in
 * `grant-tokens:<grantId>`; both take the grant's remaining TTL when written, so every generation expires
 * with the grant and a reused old token is recognised for as long as the grant is. `grants:by-principal:<key>`
 * and `grants:by-expiry` index the grants, and `grants:by-creation` scores each id by its `createdAt` for
 * the operator's listing.
 */

/**
 * KEYS: grant, its token set, principal's set, expiry index, creation index, then the refresh token when
 * there is one.
 * ARGV: id, expiresAt, TTL, the token hash (or ''), then the grant's fields. Refuses an existing grant id
 * or token hash.
 */
const CREATE = `${EXTEND}
local has_token = #KEYS >= 6
if redis.call('EXISTS', KEYS[1]) == 1 or (has_token and redis.call('EXISTS', KEYS[6]) == 1) then
  return 0
end
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('PEXPIRE', KEYS[1], ttl)
if has_token then
  redis.call('HSET', KEYS[6], 'grantId', ARGV[1], 'generation', 1)
  redis.call('PEXPIRE', KEYS[6], ttl)
  redis.call('SADD', KEYS[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ttl)
end
redis.call('SADD', KEYS[3], ARGV[1])
extend(KEYS[3], ttl)
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
extend(KEYS[4], ttl)
redis.call('ZADD', KEYS[5], redis.call('HGET', KEYS[1], 'createdAt'), ARGV[1])
extend(KEYS[5], ttl)
return 1
`;

/**
 * KEYS: grant, its token set, the new refresh token. ARGV: expected generation, rotatedAt, whether there is
 * a grace response ('1' / '0'), the grace response, the token hash, the TTL margin (for a grant that lost
 * its TTL). The compare-and-swap: only an unrevoked grant, unexpired at `rotatedAt`, still at the expected
 * generation, moves on; the new token takes the grant's remaining TTL.
 */
const ROTATE = `
local f = redis.call('HMGET', KEYS[1], 'revokedAt', 'generation', 'expiresAt')
if not f[2] or f[1] or tonumber(f[2]) ~= tonumber(ARGV[1]) or tonumber(f[3]) <= tonumber(ARGV[2]) then
  return false
end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'duplicate'} end
local generation = tonumber(f[2]) + 1
redis.call('HSET', KEYS[1], 'generation', generation, 'rotatedAt', ARGV[2])
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'graceResponse', ARGV[4])
else
  redis.call('HDEL', KEYS[1], 'graceResponse')
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = math.max(tonumber(f[3]) - tonumber(ARGV[2]), 0) + tonumber(ARGV[6]) end
redis.call('HSET', KEYS[3], 'grantId', redis.call('HGET', KEYS[1], 'id'), 'generation', generation)
redis.call('PEXPIRE', KEYS[3], ttl)
redis.call('SADD', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ttl)
return {'rotated', redis.call('HGETALL', KEYS[1])}
`;

/**
 * KEYS: grant, revocations by time, by expiry, watermark. ARGV: id, now, revocation expiresAt, its TTL,
 * revocation stem. The first revocation wins the grant; the entry is added either way, in the same step.
 */
const REVOKE = `${ADD_REVOCATION}
local revoked = false
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HEXISTS', KEYS[1], 'revokedAt') == 0 then
  redis.call('HSET', KEYS[1], 'revokedAt', ARGV[2])
  revoked = redis.call('HGETALL', KEYS[1])
end
add_revocation(ARGV[5], KEYS[2], KEYS[3], KEYS[4], 'grant', ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]))
return revoked
`;

/**
 * KEYS: principal's set, revocations by time, by expiry, watermark. ARGV: grant stem, now, revocation
 * expiresAt, its TTL, revocation stem. Revokes every unrevoked grant of the principal, each with its entry.
 */
const REVOKE_BY_PRINCIPAL = `${ADD_REVOCATION}
local revoked = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. id
  if redis.call('EXISTS', key) == 0 then
    redis.call('SREM', KEYS[1], id)
  elseif redis.call('HEXISTS', key, 'revokedAt') == 0 then
    redis.call('HSET', key, 'revokedAt', ARGV[2])
    revoked[#revoked + 1] = redis.call('HGETALL', key)
    add_revocation(ARGV[5], KEYS[2], KEYS[3], KEYS[4], 'grant', id, ARGV[2], ARGV[3], tonumber(ARGV[4]))
  end
end
return revoked
`;

/**
 * KEYS: expiry index, creation index. ARGV: grant stem, token-set stem, refresh-token stem, principal-set
 * stem, now, limit.
 * Removes up to `limit` grants expired at `now`, with every refresh token they issued.
 */
const DELETE_EXPIRED = `
local limit = tonumber(ARGV[6])
local removed = 0
while removed < limit do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[5], 'LIMIT', 0, limit - removed)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    local principal = redis.call('HGET', ARGV[1] .. id, 'principalKey')
    for _, token in ipairs(redis.call('SMEMBERS', ARGV[2] .. id)) do
      redis.call('DEL', ARGV[3] .. token)
    end
    redis.call('DEL', ARGV[2] .. id)
    if principal then
      redis.call('DEL', ARGV[1] .. id)
      redis.call('SREM', ARGV[4] .. principal, id)
      removed = removed + 1
    end
  end
end
return removed
`;

function toRecord(fields: Fields): GrantRecord {
  return {
    id: text(fields, 'id'),
    clientId: text(fields, 'clientId'),
    principal: JSON.parse(text(fields, 'principal')) as PrincipalSnapshot,
    scopes: JSON.parse(text(fields, 'scopes')) as string[],
    resource: text(fields, 'resource'),
    authTime: num(fields, 'authTime'),
    createdAt: num(fields, 'createdAt'),
    expiresAt: num(fields, 'expiresAt'),
    ...optionalNum(fields, 'revokedAt'),
    generation: num(fields, 'generation'),
    rotatedAt: num(fields, 'rotatedAt'),
    ...optionalText(fields, 'graceResponse'),
  };
}

export function createRedisGrantStore(ctx: RedisContext): GrantStore {
  const { keys } = ctx;
  const create = ctx.script('grants_create', CREATE);
  const rotate = ctx.script('grants_rotate', ROTATE);
  const revoke = ctx.script('grants_revoke', REVOKE);
  const revokeByPrincipal = ctx.script('grants_revoke_by_principal', REVOKE_BY_PRINCIPAL);
  const deleteExpired = ctx.script('grants_delete_expired', DELETE_EXPIRED);
  const members = ctx.script('member_hashes', MEMBER_HASHES);
  const listBatch = ctx.script('list_page', LIST_PAGE);
  const revocationKeys = [keys.revocationsByTime, keys.revocationsByExpiry, keys.revocationWatermark];

  return {
    async create(grant, refreshTokenHash) {
      const principalKey = snapshotPrincipalKey(grant.principal);
      const ttl = ttlMs(grant.expiresAt, grant.createdAt);
      const created = await create(
        [
          keys.grant + grant.id,
          keys.grantTokens + grant.id,
          keys.grantsByPrincipal + principalKey,
          keys.grantsByExpiry,
          keys.grantsByCreation,
          ...(refreshTokenHash === undefined ? [] : [keys.refreshToken + refreshTokenHash]),
        ],
        [
          grant.id,
          grant.expiresAt,
          ttl,
          refreshTokenHash ?? '',
          ...hashArgs({
            id: grant.id,
            clientId: grant.clientId,
            principalKey,
            principal: JSON.stringify(grant.principal),
            scopes: JSON.stringify(grant.scopes),
            resource: grant.resource,
            authTime: grant.authTime,
            createdAt: grant.createdAt,
            expiresAt: grant.expiresAt,
            revokedAt: grant.revokedAt,
            generation: grant.generation,
            rotatedAt: grant.rotatedAt,
            graceResponse: grant.graceResponse,
          }),
        ],
      );
      if (created !== 1) throw duplicateRecord('grant id or refresh token hash');
    },
    async get(id, now) {
      const grant = recordOf(await ctx.run((client) => client.hgetall(keys.grant + id)), toRecord);
      return grant !== undefined && grant.expiresAt > now ? grant : undefined;
    },
    async findRefreshToken(refreshTokenHash) {
      const fields = toFields(
        await ctx.run((client) => client.hgetall(keys.refreshToken + refreshTokenHash)),
      );
      return fields === undefined
        ? undefined
        : { grantId: text(fields, 'grantId'), generation: num(fields, 'generation') };
    },
    async rotate(id, expectedGeneration, newRefreshTokenHash, rotatedAt, graceResponse) {
      const [status, grant] = toList(
        await rotate(
          [keys.grant + id, keys.grantTokens + id, keys.refreshToken + newRefreshTokenHash],
          [
            expectedGeneration,
            rotatedAt,
            graceResponse === undefined ? '0' : '1',
            graceResponse ?? '',
            newRefreshTokenHash,
            TTL_MARGIN_MS,
          ],
        ),
      );
      if (status === 'duplicate') throw duplicateRecord('refresh token hash');
      return status === 'rotated' ? recordOf(grant, toRecord) : undefined;
    },
    async revoke(id, now, revocationExpiresAt) {
      const reply = await revoke(
        [keys.grant + id, ...revocationKeys],
        [id, now, revocationExpiresAt, ttlMs(revocationExpiresAt, now), keys.revocation],
      );
      return recordOf(reply, toRecord);
    },
    async revokeByPrincipal(principalKey, now, revocationExpiresAt) {
      const reply = await revokeByPrincipal(
        [keys.grantsByPrincipal + principalKey, ...revocationKeys],
        [keys.grant, now, revocationExpiresAt, ttlMs(revocationExpiresAt, now), keys.revocation],
      );
      return recordsOf(reply, toRecord).sort(byCreatedAtThenId);
    },
    async listByPrincipal(principalKey, now) {
      const reply = await members([keys.grantsByPrincipal + principalKey], [keys.grant]);
      return recordsOf(reply, toRecord)
        .filter((grant) => grant.revokedAt === undefined && grant.expiresAt > now)
        .sort(byCreatedAtThenId);
    },
    list(now, page) {
      return listPage(listBatch, keys.grantsByCreation, keys.grant, 'hash', page, (stored) => {
        const grant = recordOf(stored, toRecord);
        return grant !== undefined && grant.expiresAt > now ? grant : undefined;
      });
    },
    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      if (max === 0) return 0;
      return Number(
        await deleteExpired(
          [keys.grantsByExpiry, keys.grantsByCreation],
          [keys.grant, keys.grantTokens, keys.refreshToken, keys.grantsByPrincipal, now, max],
        ),
      );
    },
  };
}
