import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { type StoreContractOptions, type StoresHarness, unique, useContractHarness } from './harness.js';

/**
 * Registers the `Stores.rateLimiter` contract for one adapter. The limiters run on the engine's own clock
 * (`rate-limiter-flexible` reads the wall clock, Redis its TTLs), so the one test that waits for a window to
 * end uses a one-second window and waits well past it.
 *
 * @example
 * ```ts
 * describeRateLimiterContract('memory', memoryHarness);
 * ```
 */
export interface RateLimiterContractOptions extends StoreContractOptions {
  /** The adapter's limits live in each process (SQLite): the race test uses one connection only. */
  readonly perProcess?: boolean;
}

export function describeRateLimiterContract(
  name: string,
  makeStores: () => Promise<StoresHarness>,
  options: RateLimiterContractOptions = {},
): void {
  describe(`RateLimiter contract: ${name}`, () => {
    const ctx = useContractHarness(name, makeStores, options);

    it('allows `points` events per key in a window, then refuses with the seconds left in it', async () => {
      const limiter = ctx.stores.rateLimiter({ points: 3, durationSeconds: 60, keyPrefix: unique('l') });
      for (let i = 0; i < 3; i++) expect(await limiter.consume('alice')).toEqual({ allowed: true });

      const refused = await limiter.consume('alice');
      expect(refused.allowed).toBe(false);
      if (!refused.allowed) {
        expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
        expect(refused.retryAfterSeconds).toBeLessThanOrEqual(60);
      }
    });

    it('counts each key and each prefix on its own', async () => {
      const prefix = unique('l');
      const limiter = ctx.stores.rateLimiter({ points: 1, durationSeconds: 60, keyPrefix: prefix });
      const other = ctx.stores.rateLimiter({ points: 1, durationSeconds: 60, keyPrefix: `${prefix}-other` });

      expect(await limiter.consume('alice')).toEqual({ allowed: true });
      expect(await limiter.consume('bob')).toEqual({ allowed: true });
      expect(await other.consume('alice')).toEqual({ allowed: true });
      expect((await limiter.consume('alice')).allowed).toBe(false);
    });

    it('allows again once the window has passed', async () => {
      const limiter = ctx.stores.rateLimiter({ points: 1, durationSeconds: 1, keyPrefix: unique('l') });
      expect(await limiter.consume('k')).toEqual({ allowed: true });
      expect((await limiter.consume('k')).allowed).toBe(false);
      await sleep(2_500);
      expect(await limiter.consume('k')).toEqual({ allowed: true });
    });

    it('allows exactly `points` of many concurrent consumes, across every connection', async () => {
      const prefix = unique('l');
      const racers = options.perProcess ? [ctx.stores] : await ctx.racers();
      const limiters = racers.map((stores) =>
        stores.rateLimiter({ points: 5, durationSeconds: 60, keyPrefix: prefix }),
      );

      const decisions = await Promise.all(
        Array.from({ length: 40 }, (_, i) => limiters[i % limiters.length]?.consume('shared')),
      );

      expect(decisions.filter((d) => d?.allowed === true)).toHaveLength(5);
    });

    it('refuses options that would make it meaningless', () => {
      expect(() => ctx.stores.rateLimiter({ points: 0, durationSeconds: 60, keyPrefix: 'x' })).toThrow(
        RangeError,
      );
      expect(() => ctx.stores.rateLimiter({ points: 1, durationSeconds: 0.5, keyPrefix: 'x' })).toThrow(
        RangeError,
      );
    });
  });
}
