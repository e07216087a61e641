import type { ConsentRecord, ConsentStore } from '../ports.js';
import type { RedisContext } from './context.js';
import { EXTEND } from './lua.js';
import { byteOrder, toList } from './replies.js';
import { ttlMs } from './ttl.js';

/*
 * A consent is the JSON string `consent:<principalKey>:<clientId>`; `consents:by-principal:<principalKey>`
 * holds the client ids of each principal.
 */

/** KEYS: consent, principal's set. ARGV: client id, record JSON, TTL. Inserts or replaces. */
const PUT = `${EXTEND}
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
extend(KEYS[2], tonumber(ARGV[3]))
return 1
`;

/** KEYS: consent, principal's set. ARGV: client id. */
const DELETE = `
redis.call('SREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
`;

/** KEYS: principal's set. ARGV: the principal's consent stem. Deletes every consent; returns how many. */
const DELETE_BY_PRINCIPAL = `
local removed = 0
for _, client_id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  removed = removed + redis.call('DEL', ARGV[1] .. client_id)
end
redis.call('DEL', KEYS[1])
return removed
`;

/** KEYS: principal's set. ARGV: the principal's consent stem. Every stored consent's JSON. */
const LIST = `
local values = {}
for _, client_id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local value = redis.call('GET', ARGV[1] .. client_id)
  if value then values[#values + 1] = value end
end
return values
`;

function live(value: string | null, now: number): ConsentRecord | undefined {
  if (value === null) return undefined;
  const consent = JSON.parse(value) as ConsentRecord;
  return consent.expiresAt > now ? consent : undefined;
}

export function createRedisConsentStore(ctx: RedisContext): ConsentStore {
  const { keys } = ctx;
  const put = ctx.script('consents_put', PUT);
  const remove = ctx.script('consents_delete', DELETE);
  const removeByPrincipal = ctx.script('consents_delete_by_principal', DELETE_BY_PRINCIPAL);
  const list = ctx.script('consents_list', LIST);

  return {
    async put(record) {
      const consent: ConsentRecord = {
        principalKey: record.principalKey,
        clientId: record.clientId,
        scopes: record.scopes,
        grantedAt: record.grantedAt,
        expiresAt: record.expiresAt,
      };
      await put(
        [keys.consent(record.principalKey) + record.clientId, keys.consentsByPrincipal + record.principalKey],
        [record.clientId, JSON.stringify(consent), ttlMs(record.expiresAt, record.grantedAt)],
      );
    },
    async get(principalKey, clientId, now) {
      return live(await ctx.run((client) => client.get(keys.consent(principalKey) + clientId)), now);
    },
    async delete(principalKey, clientId) {
      const removed = await remove(
        [keys.consent(principalKey) + clientId, keys.consentsByPrincipal + principalKey],
        [clientId],
      );
      return removed === 1;
    },
    async deleteByPrincipal(principalKey) {
      return Number(
        await removeByPrincipal([keys.consentsByPrincipal + principalKey], [keys.consent(principalKey)]),
      );
    },
    async listByPrincipal(principalKey, now) {
      const values = toList(
        await list([keys.consentsByPrincipal + principalKey], [keys.consent(principalKey)]),
      );
      return values
        .flatMap((value) => live(String(value), now) ?? [])
        .sort((a, b) => byteOrder(a.clientId, b.clientId));
    },
  };
}
