import type { EphemeralStore } from '../ports.js';
import { sweepLimit } from '../sweep-limit.js';
import type { MemoryPort } from './copy.js';

interface StoredValue {
  /** JSON text: every read parses a fresh object, as the SQL and Redis adapters do. */
  readonly json: string;
  readonly expiresAt: number;
}

function keyOf(namespace: string, key: string): string {
  return JSON.stringify([namespace, key]);
}

export function createMemoryEphemeralStore(): MemoryPort<EphemeralStore> {
  const values = new Map<string, StoredValue>();

  const live = (namespace: string, key: string, now: number): StoredValue | undefined => {
    const stored = values.get(keyOf(namespace, key));
    return stored !== undefined && stored.expiresAt > now ? stored : undefined;
  };

  const store: EphemeralStore = {
    async put(namespace, key, value, expiresAt) {
      values.set(keyOf(namespace, key), { json: JSON.stringify(value), expiresAt });
    },

    async get(namespace, key, now) {
      const stored = live(namespace, key, now);
      return stored === undefined ? undefined : (JSON.parse(stored.json) as Record<string, unknown>);
    },

    async take(namespace, key, now) {
      const stored = live(namespace, key, now);
      if (stored === undefined) return undefined;
      values.delete(keyOf(namespace, key));
      return JSON.parse(stored.json) as Record<string, unknown>;
    },

    async delete(namespace, key) {
      return values.delete(keyOf(namespace, key));
    },

    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      let removed = 0;
      for (const [key, stored] of values) {
        if (removed >= max) break;
        if (stored.expiresAt > now) continue;
        values.delete(key);
        removed += 1;
      }
      return removed;
    },
  };

  return { store, clear: () => values.clear() };
}
