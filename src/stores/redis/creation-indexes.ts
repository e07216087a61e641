import type { RedisContext } from './context.js';
import { EXTEND } from './lua.js';

/*
 * The creation indexes (`sessions:by-creation`, `grants:by-creation`, `clients:by-creation`) arrived after
 * records were already being stored. Stores opening a key prefix whose marker `indexes:by-creation` is
 * not set yet index every record found with `SCAN` (never `KEYS`), batch by batch, then set the marker:
 * once per prefix, and harmless when several instances do it at once (adding an id again changes nothing).
 */

/** Keys one `SCAN` call asks for, and so one indexing script handles at most. */
const SCAN_COUNT = 500;

/**
 * KEYS: creation index, then (clients only) the expiry index. ARGV: `hash` or `string`, then record keys.
 * Indexes each record that still exists, in the same step as it is read, so a record deleted meanwhile is
 * never indexed after its deletion. An index with a TTL is kept alive at least as long as the record.
 */
const INDEX_RECORDS = `${EXTEND}
for i = 2, #ARGV do
  local key = ARGV[i]
  if ARGV[1] == 'hash' then
    local f = redis.call('HMGET', key, 'id', 'createdAt')
    if f[1] and f[2] then
      redis.call('ZADD', KEYS[1], f[2], f[1])
      local ttl = redis.call('PTTL', key)
      if ttl > 0 then extend(KEYS[1], ttl) end
    end
  else
    local value = redis.call('GET', key)
    if value then
      local client = cjson.decode(value)
      redis.call('ZADD', KEYS[1], client.createdAt, client.clientId)
      if type(client.expiresAt) == 'number' then redis.call('ZADD', KEYS[2], client.expiresAt, client.clientId) end
    end
  end
end
return 0
`;

/** `text` with Redis glob characters escaped, for `SCAN MATCH`. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** Indexes the records stored before the creation indexes existed, once per key prefix (see above). */
export async function indexByCreation(ctx: RedisContext): Promise<void> {
  const { keys } = ctx;
  const marker = `${keys.prefix}indexes:by-creation`;
  if ((await ctx.run((redis) => redis.exists(marker))) === 1) return;
  const indexRecords = ctx.script('index_by_creation', INDEX_RECORDS);
  const kinds = [
    { stem: keys.session, storage: 'hash', indexes: [keys.sessionsByCreation] },
    { stem: keys.grant, storage: 'hash', indexes: [keys.grantsByCreation] },
    { stem: keys.client, storage: 'string', indexes: [keys.clientsByCreation, keys.clientsByExpiry] },
  ] as const;
  for (const { stem, storage, indexes } of kinds) {
    let cursor = '0';
    do {
      const [next, found] = await ctx.run((redis) =>
        redis.scan(cursor, 'MATCH', `${globEscape(stem)}*`, 'COUNT', SCAN_COUNT),
      );
      cursor = next;
      if (found.length > 0) await indexRecords([...indexes], [storage, ...found]);
    } while (cursor !== '0');
  }
  await ctx.run((redis) => redis.set(marker, '1'));
}
