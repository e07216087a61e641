import { describe, expect, it } from 'vitest';
import type { UpstreamTokenRecord } from '../../src/stores/ports.js';
import {
  HOUR,
  racer,
  type StoreContractOptions,
  type StoresHarness,
  T0,
  unique,
  useContractHarness,
} from './harness.js';

type UpstreamTokenInput = Omit<UpstreamTokenRecord, 'version'>;

function tokenInput(overrides: Partial<UpstreamTokenInput> = {}): UpstreamTokenInput {
  return {
    principalKey: `https://login.example.test#${unique('sub')}`,
    provider: 'corp-sso',
    ciphertext: `v1.${unique('sealed')}`,
    accessExpiresAt: T0 + HOUR,
    updatedAt: T0,
    ...overrides,
  };
}

/**
 * Registers the `UpstreamTokenStore` contract (see `src/stores/ports.ts`) for one adapter.
 *
 * @example
 * ```ts
 * describeUpstreamTokenStoreContract('memory', memoryHarness);
 * ```
 */
export function describeUpstreamTokenStoreContract(
  name: string,
  makeStores: () => Promise<StoresHarness>,
  options: StoreContractOptions = {},
): void {
  describe(`UpstreamTokenStore contract: ${name}`, () => {
    const ctx = useContractHarness(name, makeStores, options);

    it('creates with expectedVersion 0 as version 1 and reads it back', async () => {
      const input = tokenInput();

      const stored = await ctx.stores.upstreamTokens.put(input, 0);

      expect(stored).toStrictEqual({ ...input, version: 1 });
      expect(await ctx.stores.upstreamTokens.get(input.principalKey, input.provider)).toStrictEqual(stored);
    });

    it('keeps an absent accessExpiresAt absent, also when replacing a record that had one', async () => {
      const input = tokenInput();
      await ctx.stores.upstreamTokens.put(input, 0);
      const { accessExpiresAt: _unknown, ...withoutExpiry } = tokenInput({
        principalKey: input.principalKey,
        updatedAt: T0 + 1,
      });

      const replaced = await ctx.stores.upstreamTokens.put(withoutExpiry, 1);

      expect(replaced).toStrictEqual({ ...withoutExpiry, version: 2 });
      expect(await ctx.stores.upstreamTokens.get(input.principalKey, input.provider)).not.toHaveProperty(
        'accessExpiresAt',
      );
    });

    it('replaces when the version matches, bumping it', async () => {
      const input = tokenInput();
      await ctx.stores.upstreamTokens.put(input, 0);
      const next = {
        ...input,
        ciphertext: 'v1.refreshed',
        accessExpiresAt: T0 + 2 * HOUR,
        updatedAt: T0 + HOUR,
      };

      expect(await ctx.stores.upstreamTokens.put(next, 1)).toStrictEqual({ ...next, version: 2 });
      const third = { ...next, ciphertext: 'v1.again', updatedAt: T0 + 2 * HOUR };
      expect(await ctx.stores.upstreamTokens.put(third, 2)).toStrictEqual({ ...third, version: 3 });
      expect(await ctx.stores.upstreamTokens.get(input.principalKey, input.provider)).toStrictEqual({
        ...third,
        version: 3,
      });
    });

    it('refuses a stale, future or create-again version and changes nothing', async () => {
      const input = tokenInput();
      await ctx.stores.upstreamTokens.put(input, 0);
      const current = await ctx.stores.upstreamTokens.put({ ...input, ciphertext: 'v1.second' }, 1);
      const other = { ...input, ciphertext: 'v1.loser' };

      expect(await ctx.stores.upstreamTokens.put(other, 0)).toBeUndefined();
      expect(await ctx.stores.upstreamTokens.put(other, 1)).toBeUndefined();
      expect(await ctx.stores.upstreamTokens.put(other, 3)).toBeUndefined();

      expect(await ctx.stores.upstreamTokens.get(input.principalKey, input.provider)).toStrictEqual(current);
    });

    it('refuses to replace a record that does not exist', async () => {
      const input = tokenInput();

      expect(await ctx.stores.upstreamTokens.put(input, 1)).toBeUndefined();
      expect(await ctx.stores.upstreamTokens.get(input.principalKey, input.provider)).toBeUndefined();
    });

    it('keeps principals and providers apart', async () => {
      const input = tokenInput();
      const otherProvider = { ...input, provider: 'github', ciphertext: 'v1.github' };
      const otherPrincipal = { ...input, principalKey: `${input.principalKey}-2`, ciphertext: 'v1.other' };
      for (const record of [input, otherProvider, otherPrincipal]) {
        expect(await ctx.stores.upstreamTokens.put(record, 0)).toStrictEqual({ ...record, version: 1 });
      }

      expect((await ctx.stores.upstreamTokens.get(input.principalKey, 'corp-sso'))?.ciphertext).toBe(
        input.ciphertext,
      );
      expect((await ctx.stores.upstreamTokens.get(input.principalKey, 'github'))?.ciphertext).toBe(
        'v1.github',
      );
      expect(await ctx.stores.upstreamTokens.get(input.principalKey, 'gitlab')).toBeUndefined();
    });

    it('deletes once, then reports false; a later create starts again at version 1', async () => {
      const input = tokenInput();
      await ctx.stores.upstreamTokens.put(input, 0);
      await ctx.stores.upstreamTokens.put(input, 1);

      expect(await ctx.stores.upstreamTokens.delete(input.principalKey, input.provider)).toBe(true);
      expect(await ctx.stores.upstreamTokens.delete(input.principalKey, input.provider)).toBe(false);
      expect(await ctx.stores.upstreamTokens.get(input.principalKey, input.provider)).toBeUndefined();
      expect((await ctx.stores.upstreamTokens.put(input, 0))?.version).toBe(1);
    });

    it('hands out copies: mutating a returned record never changes the stored one', async () => {
      const input = tokenInput();
      await ctx.stores.upstreamTokens.put(input, 0);

      const first = (await ctx.stores.upstreamTokens.get(input.principalKey, input.provider)) as {
        ciphertext: string;
        version: number;
      };
      first.ciphertext = 'tampered';
      first.version = 99;

      expect(await ctx.stores.upstreamTokens.get(input.principalKey, input.provider)).toStrictEqual({
        ...input,
        version: 1,
      });
    });

    describe('races', () => {
      it('lets exactly one of 10 concurrent first writes win', async () => {
        const pool = await ctx.racers();
        const base = tokenInput();
        const candidates = Array.from({ length: 10 }, (_, i) => ({ ...base, ciphertext: `v1.writer-${i}` }));

        const results = await Promise.all(
          candidates.map((input, i) => racer(pool, i).upstreamTokens.put(input, 0)),
        );

        const winners = results.filter((result) => result !== undefined);
        expect(winners).toHaveLength(1);
        expect(await ctx.stores.upstreamTokens.get(base.principalKey, base.provider)).toStrictEqual(
          winners[0],
        );
      });

      it('lets exactly one of 10 concurrent replacements of the same version win', async () => {
        const pool = await ctx.racers();
        const base = tokenInput();
        await ctx.stores.upstreamTokens.put(base, 0);
        const candidates = Array.from({ length: 10 }, (_, i) => ({ ...base, ciphertext: `v1.refresh-${i}` }));

        const results = await Promise.all(
          candidates.map((input, i) => racer(pool, i).upstreamTokens.put(input, 1)),
        );

        const winners = results.filter((result) => result !== undefined);
        expect(winners).toHaveLength(1);
        expect(winners[0]?.version).toBe(2);
        expect(await ctx.stores.upstreamTokens.get(base.principalKey, base.provider)).toStrictEqual(
          winners[0],
        );
      });
    });

    if (options.durable) {
      it('keeps upstream tokens and their versions across close and reopen', async () => {
        const input = tokenInput();
        await ctx.stores.upstreamTokens.put(input, 0);
        const replaced = await ctx.stores.upstreamTokens.put({ ...input, ciphertext: 'v1.second' }, 1);

        const reopened = await ctx.reopen();

        expect(await reopened.upstreamTokens.get(input.principalKey, input.provider)).toStrictEqual(replaced);
        expect(await reopened.upstreamTokens.put(input, 1)).toBeUndefined();
      });
    }
  });
}
