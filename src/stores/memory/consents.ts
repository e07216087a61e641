import type { ConsentRecord, ConsentStore } from '../ports.js';
import { compareBinary, copyJson, type MemoryPort } from './copy.js';

function isLive(consent: ConsentRecord, now: number): boolean {
  return consent.expiresAt > now;
}

/** Consents by principal, then by client id: `listByPrincipal` never scans other principals. */
export function createMemoryConsentStore(): MemoryPort<ConsentStore> {
  const consents = new Map<string, Map<string, ConsentRecord>>();

  const store: ConsentStore = {
    async put(record) {
      const byClient = consents.get(record.principalKey);
      if (byClient === undefined) {
        consents.set(record.principalKey, new Map([[record.clientId, copyJson(record)]]));
      } else {
        byClient.set(record.clientId, copyJson(record));
      }
    },

    async get(principalKey, clientId, now) {
      const consent = consents.get(principalKey)?.get(clientId);
      return consent !== undefined && isLive(consent, now) ? copyJson(consent) : undefined;
    },

    async delete(principalKey, clientId) {
      const byClient = consents.get(principalKey);
      if (byClient === undefined || !byClient.delete(clientId)) return false;
      if (byClient.size === 0) consents.delete(principalKey);
      return true;
    },

    async deleteByPrincipal(principalKey) {
      const removed = consents.get(principalKey)?.size ?? 0;
      consents.delete(principalKey);
      return removed;
    },

    async listByPrincipal(principalKey, now) {
      return [...(consents.get(principalKey)?.values() ?? [])]
        .filter((consent) => isLive(consent, now))
        .sort((a, b) => compareBinary(a.clientId, b.clientId))
        .map(copyJson);
    },
  };

  return { store, clear: () => consents.clear() };
}
