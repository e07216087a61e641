import { describe, expect, it } from 'vitest';
import {
  MINUTE,
  racer,
  type StoreContractOptions,
  type StoresHarness,
  T0,
  unique,
  useContractHarness,
} from './harness.js';

const WINDOW = 15 * MINUTE;

export interface CounterStoreContractOptions extends StoreContractOptions {
  /**
   * The adapter leaves out the optional `deleteExpired` because its backend expires keys natively (Redis
   * TTLs). Without this flag the suite requires the sweep.
   */
  readonly withoutSweep?: boolean;
}

/**
 * Registers the `CounterStore` contract (see `src/stores/ports.ts`) for one adapter.
 *
 * @example
 * ```ts
 * describeCounterStoreContract('memory', memoryHarness);
 * ```
 */
export function describeCounterStoreContract(
  name: string,
  makeStores: () => Promise<StoresHarness>,
  options: CounterStoreContractOptions = {},
): void {
  describe(`CounterStore contract: ${name}`, () => {
    const ctx = useContractHarness(name, makeStores, options);

    it('starts a key at 1 with a window ending windowMs from now', async () => {
      const key = unique('login:alice');

      expect(await ctx.stores.counters.increment(key, WINDOW, T0)).toStrictEqual({
        count: 1,
        resetAt: T0 + WINDOW,
      });
    });

    it('counts up inside the window without moving its end', async () => {
      const key = unique('login:alice');
      await ctx.stores.counters.increment(key, WINDOW, T0);

      expect(await ctx.stores.counters.increment(key, WINDOW, T0 + MINUTE)).toStrictEqual({
        count: 2,
        resetAt: T0 + WINDOW,
      });
      // A different windowMs does not move a running window either.
      expect(await ctx.stores.counters.increment(key, 2 * WINDOW, T0 + WINDOW - 1)).toStrictEqual({
        count: 3,
        resetAt: T0 + WINDOW,
      });
    });

    it('starts a new window at 1 once the old one has ended', async () => {
      const key = unique('login:alice');
      await ctx.stores.counters.increment(key, WINDOW, T0);
      await ctx.stores.counters.increment(key, WINDOW, T0 + 1);

      expect(await ctx.stores.counters.increment(key, WINDOW, T0 + WINDOW)).toStrictEqual({
        count: 1,
        resetAt: T0 + 2 * WINDOW,
      });
      expect(await ctx.stores.counters.increment(key, WINDOW, T0 + 5 * WINDOW)).toStrictEqual({
        count: 1,
        resetAt: T0 + 6 * WINDOW,
      });
    });

    it('peeks at the count without changing it; undefined when absent or ended', async () => {
      const key = unique('register:203.0.113.9');
      expect(await ctx.stores.counters.peek(key, T0)).toBeUndefined();
      await ctx.stores.counters.increment(key, WINDOW, T0);
      await ctx.stores.counters.increment(key, WINDOW, T0);

      expect(await ctx.stores.counters.peek(key, T0 + WINDOW - 1)).toStrictEqual({
        count: 2,
        resetAt: T0 + WINDOW,
      });
      expect(await ctx.stores.counters.peek(key, T0 + WINDOW - 1)).toStrictEqual({
        count: 2,
        resetAt: T0 + WINDOW,
      });
      expect(await ctx.stores.counters.peek(key, T0 + WINDOW)).toBeUndefined();
    });

    it('keeps keys apart', async () => {
      const first = unique('login:alice');
      const second = unique('login:bob');
      await ctx.stores.counters.increment(first, WINDOW, T0);
      await ctx.stores.counters.increment(first, WINDOW, T0);

      expect((await ctx.stores.counters.increment(second, WINDOW, T0)).count).toBe(1);
      expect((await ctx.stores.counters.peek(first, T0))?.count).toBe(2);
    });

    it('resets a key to absent', async () => {
      const key = unique('login:alice');
      await ctx.stores.counters.increment(key, WINDOW, T0);
      await ctx.stores.counters.increment(key, WINDOW, T0);

      await ctx.stores.counters.reset(key);
      await ctx.stores.counters.reset(unique('never-counted'));

      expect(await ctx.stores.counters.peek(key, T0)).toBeUndefined();
      expect(await ctx.stores.counters.increment(key, WINDOW, T0 + 1)).toStrictEqual({
        count: 1,
        resetAt: T0 + 1 + WINDOW,
      });
    });

    if (!options.withoutSweep) {
      describe('deleteExpired', () => {
        it('is implemented', () => {
          expect(ctx.stores.counters.deleteExpired).toBeTypeOf('function');
        });

        it('removes the counters whose window ended at `now` and returns how many', async () => {
          const now = T0 + WINDOW;
          const live = unique('live');
          await ctx.stores.counters.increment(unique('ended'), WINDOW, T0);
          await ctx.stores.counters.increment(unique('ended'), MINUTE, T0);
          await ctx.stores.counters.increment(live, WINDOW, T0 + 1);

          expect(await ctx.stores.counters.deleteExpired?.(now, 100)).toBe(2);

          expect(await ctx.stores.counters.peek(live, now)).toStrictEqual({ count: 1, resetAt: now + 1 });
          expect(await ctx.stores.counters.deleteExpired?.(now, 100)).toBe(0);
        });

        it('removes at most `limit` per call, and nothing for 0 or a negative limit', async () => {
          const now = T0 + WINDOW;
          for (let i = 0; i < 5; i += 1) await ctx.stores.counters.increment(unique('ended'), WINDOW, T0);

          expect(await ctx.stores.counters.deleteExpired?.(now, 0)).toBe(0);
          expect(await ctx.stores.counters.deleteExpired?.(now, -1)).toBe(0);
          expect(await ctx.stores.counters.deleteExpired?.(now, 2)).toBe(2);
          expect(await ctx.stores.counters.deleteExpired?.(now, 2)).toBe(2);
          expect(await ctx.stores.counters.deleteExpired?.(now, 2)).toBe(1);
        });
      });
    }

    it('hands out counts 1 to 20 exactly once to 20 concurrent increments', async () => {
      const pool = await ctx.racers();
      const key = unique('login:race');

      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => racer(pool, i).counters.increment(key, WINDOW, T0)),
      );

      expect(results.map((result) => result.count).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      for (const result of results) expect(result.resetAt).toBe(T0 + WINDOW);
      expect(await ctx.stores.counters.peek(key, T0)).toStrictEqual({ count: 20, resetAt: T0 + WINDOW });
    });

    if (options.durable) {
      it('keeps counts across close and reopen', async () => {
        const key = unique('login:alice');
        await ctx.stores.counters.increment(key, WINDOW, T0);
        await ctx.stores.counters.increment(key, WINDOW, T0);

        const reopened = await ctx.reopen();

        expect(await reopened.counters.increment(key, WINDOW, T0 + 1)).toStrictEqual({
          count: 3,
          resetAt: T0 + WINDOW,
        });
      });
    }
  });
}
