import type { SigningKeyRecord, SigningKeyStore } from '../ports.js';
import { sweepLimit } from '../sweep-limit.js';
import { compareBinary, copyJson, type MemoryPort } from './copy.js';

function newestFirst(a: SigningKeyRecord, b: SigningKeyRecord): number {
  if (a.createdAt !== b.createdAt) return b.createdAt - a.createdAt;
  return compareBinary(a.kid, b.kid);
}

export function createMemorySigningKeyStore(): MemoryPort<SigningKeyStore> {
  const keys = new Map<string, SigningKeyRecord>();

  const store: SigningKeyStore = {
    async list(now) {
      return [...keys.values()]
        .filter((key) => key.expiresAt > now)
        .sort(newestFirst)
        .map(copyJson);
    },

    async create(key) {
      if (keys.has(key.kid)) return false;
      keys.set(key.kid, copyJson(key));
      return true;
    },

    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      let removed = 0;
      for (const [kid, key] of keys) {
        if (removed >= max) break;
        if (key.expiresAt > now) continue;
        keys.delete(kid);
        removed += 1;
      }
      return removed;
    },
  };

  return { store, clear: () => keys.clear() };
}
