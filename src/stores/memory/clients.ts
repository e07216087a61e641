import { afterPage } from '../list-page.js';
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

    async list(now, page) {
      const live = [...clients.values()].filter((client) => isLive(client, now));
      return afterPage(live, page, (client) => client.clientId).map(copyJson);
    },

    async setApproved(clientId, approved, now) {
      const client = clients.get(clientId);
      if (client === undefined || !isLive(client, now)) return undefined;
      if ((client.approvedAt !== undefined) === approved) return copyJson(client);
      const { approvedAt: _previous, ...unapproved } = client;
      const updated: ClientRecord = approved ? { ...unapproved, approvedAt: now } : unapproved;
      clients.set(clientId, updated);
      return copyJson(updated);
    },

    async delete(clientId) {
      return clients.delete(clientId);
    },
  };

  return { store, clear: () => clients.clear() };
}
