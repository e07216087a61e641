import type { ClientRecord, ClientStore } from '../ports.js';
import type { RedisContext } from './context.js';
import { listPage } from './list-page.js';
import { LIST_PAGE } from './lua.js';
import { ttlMs } from './ttl.js';

/*
 * A client is the JSON string `client:<clientId>`, set only if absent (one script, so exactly one of
 * concurrent registrations of an id wins). A registration that lapses gets a TTL; one without `expiresAt`
 * never expires. `clients:by-creation` scores each id by its `createdAt`, for the operator's listing, and
 * `clients:by-expiry` each lapsing one by its `expiresAt`: every registration drops a few lapsed clients
 * from both (Redis expires the records themselves, and nothing else sweeps clients), so neither index
 * outgrows the clients there are. Neither index expires: clients without `expiresAt` live in them for good.
 */

/** Lapsed clients one registration removes from the indexes at most. */
const PRUNE_PER_CREATE = 10;

/**
 * KEYS: client, creation index, expiry index. ARGV: id, JSON, createdAt, expiresAt or '', TTL or '', client
 * stem, prune count. Registers the client only if the id is free, indexes it, and prunes lapsed ones.
 */
const CREATE = `
local created
if ARGV[5] == '' then
  created = redis.call('SET', KEYS[1], ARGV[2], 'NX')
else
  created = redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[5], 'NX')
end
if not created then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1]) end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[7]))) do
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('DEL', ARGV[6] .. id)
end
return 1
`;

/** KEYS: client, creation index, expiry index. ARGV: id. */
const DELETE = `
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return redis.call('DEL', KEYS[1])
`;

/**
 * KEYS: client. ARGV: the JSON read, the JSON to write. A compare-and-swap that keeps the TTL: `false`
 * when the stored value is no longer the one read (the caller reads again).
 */
const REPLACE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
`;

/** How many times `setApproved` reads again after losing a compare-and-swap to a concurrent change. */
const REPLACE_ATTEMPTS = 10;

function isLive(client: ClientRecord, now: number): boolean {
  return client.expiresAt === undefined || client.expiresAt > now;
}

export function createRedisClientStore(ctx: RedisContext): ClientStore {
  const { keys } = ctx;
  const create = ctx.script('clients_create', CREATE);
  const remove = ctx.script('clients_delete', DELETE);
  const replace = ctx.script('clients_replace', REPLACE);
  const listBatch = ctx.script('list_page', LIST_PAGE);
  const indexes = [keys.clientsByCreation, keys.clientsByExpiry];

  return {
    async create(client) {
      const reply = await create(
        [keys.client + client.clientId, ...indexes],
        [
          client.clientId,
          JSON.stringify(client),
          client.createdAt,
          client.expiresAt ?? '',
          client.expiresAt === undefined ? '' : ttlMs(client.expiresAt, client.createdAt),
          keys.client,
          PRUNE_PER_CREATE,
        ],
      );
      return reply === 1;
    },
    async get(clientId, now) {
      const value = await ctx.run((redis) => redis.get(keys.client + clientId));
      if (value === null) return undefined;
      const client = JSON.parse(value) as ClientRecord;
      return isLive(client, now) ? client : undefined;
    },
    list(now, page) {
      return listPage(listBatch, keys.clientsByCreation, keys.client, 'string', page, (stored) => {
        const client = JSON.parse(String(stored)) as ClientRecord;
        return isLive(client, now) ? client : undefined;
      });
    },
    // The record is JSON written by this adapter; it is rewritten whole, behind a compare-and-swap on the
    // text read, so a concurrent approval, revocation or delete is never overwritten.
    async setApproved(clientId, approved, now) {
      for (let attempt = 0; attempt < REPLACE_ATTEMPTS; attempt += 1) {
        const value = await ctx.run((redis) => redis.get(keys.client + clientId));
        if (value === null) return undefined;
        const client = JSON.parse(value) as ClientRecord;
        if (!isLive(client, now)) return undefined;
        if ((client.approvedAt !== undefined) === approved) return client;
        const { approvedAt: _previous, ...unapproved } = client;
        const updated: ClientRecord = approved ? { ...unapproved, approvedAt: now } : unapproved;
        if ((await replace([keys.client + clientId], [value, JSON.stringify(updated)])) === 1) return updated;
      }
      throw new Error(`The client ${clientId} kept changing while it was being approved.`);
    },
    async delete(clientId) {
      return (await remove([keys.client + clientId, ...indexes], [clientId])) === 1;
    },
  };
}
