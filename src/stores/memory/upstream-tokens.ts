import type { UpstreamTokenRecord, UpstreamTokenStore } from '../ports.js';
import { copyJson, type MemoryPort } from './copy.js';

function keyOf(principalKey: string, provider: string): string {
  return JSON.stringify([principalKey, provider]);
}

export function createMemoryUpstreamTokenStore(): MemoryPort<UpstreamTokenStore> {
  const tokens = new Map<string, UpstreamTokenRecord>();

  const store: UpstreamTokenStore = {
    async get(principalKey, provider) {
      const token = tokens.get(keyOf(principalKey, provider));
      return token === undefined ? undefined : copyJson(token);
    },

    async put(record, expectedVersion) {
      const key = keyOf(record.principalKey, record.provider);
      const current = tokens.get(key)?.version ?? 0;
      if (current !== expectedVersion) return undefined;
      const stored: UpstreamTokenRecord = copyJson({ ...record, version: current + 1 });
      tokens.set(key, stored);
      return copyJson(stored);
    },

    async delete(principalKey, provider) {
      return tokens.delete(keyOf(principalKey, provider));
    },
  };

  return { store, clear: () => tokens.clear() };
}
