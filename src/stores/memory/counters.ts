import type { CounterResult, CounterStore } from '../ports.js';
import { sweepLimit } from '../sweep-limit.js';
import type { MemoryPort } from './copy.js';

export function createMemoryCounterStore(): MemoryPort<CounterStore> {
  const counters = new Map<string, CounterResult>();

  const store: CounterStore = {
    async increment(key, windowMs, now) {
      const current = counters.get(key);
      const next: CounterResult =
        current === undefined || current.resetAt <= now
          ? { count: 1, resetAt: now + windowMs }
          : { count: current.count + 1, resetAt: current.resetAt };
      counters.set(key, next);
      return { ...next };
    },

    async peek(key, now) {
      const current = counters.get(key);
      return current !== undefined && current.resetAt > now ? { ...current } : undefined;
    },

    async reset(key) {
      counters.delete(key);
    },

    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      let removed = 0;
      for (const [key, counter] of counters) {
        if (removed >= max) break;
        if (counter.resetAt > now) continue;
        counters.delete(key);
        removed += 1;
      }
      return removed;
    },
  };

  return { store, clear: () => counters.clear() };
}
