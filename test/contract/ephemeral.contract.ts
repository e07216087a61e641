import { describe, expect, it } from 'vitest';
import {
  MINUTE,
  present,
  racer,
  type StoreContractOptions,
  type StoresHarness,
  T0,
  unique,
  useContractHarness,
} from './harness.js';

const TTL = 10 * MINUTE;

function pendingRequest(): Record<string, unknown> {
  return {
    clientId: unique('client'),
    redirectUri: 'https://app.example.test/callback',
    scopes: ['mcp:tools'],
    codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    nested: { depth: { list: [1, 2.5, -3, null, true, 'é 🚪'] } },
  };
}

/**
 * Registers the `EphemeralStore` contract (see `src/stores/ports.ts`) for one adapter.
 *
 * @example
 * ```ts
 * describeEphemeralStoreContract('memory', memoryHarness);
 * ```
 */
export function describeEphemeralStoreContract(
  name: string,
  makeStores: () => Promise<StoresHarness>,
  options: StoreContractOptions = {},
): void {
  describe(`EphemeralStore contract: ${name}`, () => {
    const ctx = useContractHarness(name, makeStores, options);

    it('round-trips a JSON value', async () => {
      const key = unique('key');
      const value = pendingRequest();
      await ctx.stores.ephemeral.put('authorize', key, value, T0 + TTL);

      expect(await ctx.stores.ephemeral.get('authorize', key, T0)).toStrictEqual(value);
    });

    it('replaces the value and the expiry of an existing key', async () => {
      const key = unique('key');
      await ctx.stores.ephemeral.put('login', key, { step: 1 }, T0 + TTL);

      await ctx.stores.ephemeral.put('login', key, { step: 2 }, T0 + 2 * TTL);

      expect(await ctx.stores.ephemeral.get('login', key, T0 + TTL)).toStrictEqual({ step: 2 });
    });

    it('keeps namespaces apart', async () => {
      const key = unique('key');
      await ctx.stores.ephemeral.put('authorize', key, { kind: 'authorize' }, T0 + TTL);
      await ctx.stores.ephemeral.put('login', key, { kind: 'login' }, T0 + TTL);

      expect(await ctx.stores.ephemeral.take('login', key, T0)).toStrictEqual({ kind: 'login' });
      expect(await ctx.stores.ephemeral.get('authorize', key, T0)).toStrictEqual({ kind: 'authorize' });
      expect(await ctx.stores.ephemeral.get('federation', key, T0)).toBeUndefined();
    });

    it('is invisible to get and take from expiresAt on', async () => {
      const key = unique('key');
      await ctx.stores.ephemeral.put('authorize', key, { a: 1 }, T0 + TTL);

      expect(await ctx.stores.ephemeral.get('authorize', key, T0 + TTL - 1)).toStrictEqual({ a: 1 });
      expect(await ctx.stores.ephemeral.get('authorize', key, T0 + TTL)).toBeUndefined();
      expect(await ctx.stores.ephemeral.take('authorize', key, T0 + TTL)).toBeUndefined();
    });

    it('takes a value once: then neither get nor take sees it', async () => {
      const key = unique('key');
      const value = pendingRequest();
      await ctx.stores.ephemeral.put('authorize', key, value, T0 + TTL);

      expect(await ctx.stores.ephemeral.take('authorize', key, T0)).toStrictEqual(value);
      expect(await ctx.stores.ephemeral.take('authorize', key, T0)).toBeUndefined();
      expect(await ctx.stores.ephemeral.get('authorize', key, T0)).toBeUndefined();
    });

    it('returns undefined for an unknown key', async () => {
      expect(await ctx.stores.ephemeral.get('authorize', 'key-unknown', T0)).toBeUndefined();
      expect(await ctx.stores.ephemeral.take('authorize', 'key-unknown', T0)).toBeUndefined();
    });

    it('deletes once, then reports false', async () => {
      const key = unique('key');
      await ctx.stores.ephemeral.put('login', key, { a: 1 }, T0 + TTL);

      expect(await ctx.stores.ephemeral.delete('login', key)).toBe(true);
      expect(await ctx.stores.ephemeral.delete('login', key)).toBe(false);
      expect(await ctx.stores.ephemeral.get('login', key, T0)).toBeUndefined();
    });

    it('hands out copies: mutating input or output never changes the stored value', async () => {
      const key = unique('key');
      const value = { list: [1, 2] };
      await ctx.stores.ephemeral.put('login', key, value, T0 + TTL);
      value.list.push(3);

      const first = await ctx.stores.ephemeral.get('login', key, T0);
      (present(first).list as number[]).push(4);

      expect(await ctx.stores.ephemeral.take('login', key, T0)).toStrictEqual({ list: [1, 2] });
    });

    describe('deleteExpired', () => {
      it('removes the records expired at `now`, in every namespace, and returns how many', async () => {
        const now = T0 + TTL;
        const live = unique('key');
        await ctx.stores.ephemeral.put('authorize', unique('key'), { a: 1 }, now);
        await ctx.stores.ephemeral.put('login', unique('key'), { a: 2 }, T0 + 1);
        await ctx.stores.ephemeral.put('login', live, { a: 3 }, now + 1);

        expect(await ctx.stores.ephemeral.deleteExpired(now, 100)).toBe(2);

        expect(await ctx.stores.ephemeral.get('login', live, now)).toStrictEqual({ a: 3 });
        expect(await ctx.stores.ephemeral.deleteExpired(now, 100)).toBe(0);
      });

      it('removes at most `limit` per call, and nothing for 0 or a negative limit', async () => {
        const now = T0 + TTL;
        for (let i = 0; i < 5; i += 1) await ctx.stores.ephemeral.put('login', unique('key'), { i }, T0);

        expect(await ctx.stores.ephemeral.deleteExpired(now, 0)).toBe(0);
        expect(await ctx.stores.ephemeral.deleteExpired(now, -1)).toBe(0);
        expect(await ctx.stores.ephemeral.deleteExpired(now, 2)).toBe(2);
        expect(await ctx.stores.ephemeral.deleteExpired(now, 2)).toBe(2);
        expect(await ctx.stores.ephemeral.deleteExpired(now, 2)).toBe(1);
      });
    });

    it('gives the value to exactly one of 20 concurrent takes', async () => {
      const pool = await ctx.racers();
      const key = unique('key');
      const value = pendingRequest();
      await ctx.stores.ephemeral.put('authorize', key, value, T0 + TTL);

      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => racer(pool, i).ephemeral.take('authorize', key, T0)),
      );

      const winners = results.filter((result) => result !== undefined);
      expect(winners).toStrictEqual([value]);
    });

    if (options.durable) {
      it('keeps records across close and reopen', async () => {
        const key = unique('key');
        const value = pendingRequest();
        await ctx.stores.ephemeral.put('authorize', key, value, T0 + TTL);

        const reopened = await ctx.reopen();

        expect(await reopened.ephemeral.take('authorize', key, T0)).toStrictEqual(value);
      });
    }
  });
}
