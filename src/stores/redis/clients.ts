import type { ClientRecord, ClientStore } from '../ports.js';
import type { RedisContext } from './context.js';
import { ttlMs } from './ttl.js';

/*
 * A client is the JSON string `client:<clientId>`, set only if absent (`SET NX`: one command, so exactly
 * one of concurrent registrations of an id wins). A registration that lapses gets a TTL; one without
 * `expiresAt` never expires.
 */

export function createRedisClientStore(ctx: RedisContext): ClientStore {
  const { keys } = ctx;
  return {
    async create(client) {
      const key = keys.client + client.clientId;
      const value = JSON.stringify(client);
      const reply = await ctx.run((redis) =>
        client.expiresAt === undefined
          ? redis.set(key, value, 'NX')
          : redis.set(key, value, 'PX', ttlMs(client.expiresAt, client.createdAt), 'NX'),
      );
      return reply === 'OK';
    },
    async get(clientId, now) {
      const value = await ctx.run((redis) => redis.get(keys.client + clientId));
      if (value === null) return undefined;
      const client = JSON.parse(value) as ClientRecord;
      return client.expiresAt === undefined || client.expiresAt > now ? client : undefined;
    },
    async delete(clientId) {
      return (await ctx.run((redis) => redis.del(keys.client + clientId))) === 1;
    },
  };
}
