import type { ClientRecord, ClientStore } from '../ports.js';
import { copyJson, type MemoryPort } from './copy.js';

function isLive(client: ClientRecord, now: number): boolean {
  return client.expiresAt === undefined || client.expiresAt > now;
}

export function createMemoryClientStore(): MemoryPort<ClientStore> {
  const clients = new Map<string, ClientRecord>();

  const store: ClientStore = {
    async create(client) {
      if (clients.has(client.clientId)) return false;
      clients.set(client.clientId, copyJson(client));
      return true;
    },

    async get(clientId, now) {
      const client = clients.get(clientId);
      return client !== undefined && isLive(client, now) ? copyJson(client) : undefined;
    },

    async delete(clientId) {
      return clients.delete(clientId);
    },
  };

  return { store, clear: () => clients.clear() };
}
