import { describe, expect, it } from 'vitest';
import type { SigningKeyRecord } from '../../src/stores/ports.js';
import {
  DAY,
  racer,
  type StoreContractOptions,
  type StoresHarness,
  T0,
  unique,
  useContractHarness,
} from './harness.js';

function signingKey(overrides: Partial<SigningKeyRecord> = {}): SigningKeyRecord {
  const createdAt = overrides.createdAt ?? T0;
  const kid = overrides.kid ?? unique('kid');
  return {
    kid,
    alg: 'ES256',
    publicJwk: {
      kty: 'EC',
      crv: 'P-256',
      x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
      y: 'x_FEzRu9',
      kid,
    },
    privateJwkCiphertext: `v1.${unique('sealed')}`,
    createdAt,
    retiresAt: createdAt + 30 * DAY,
    expiresAt: createdAt + 31 * DAY,
    ...overrides,
  };
}

function kids(keys: readonly SigningKeyRecord[]): string[] {
  return keys.map((key) => key.kid);
}

/**
 * Registers the `SigningKeyStore` contract (see `src/stores/ports.ts`) for one adapter.
 *
 * @example
 * ```ts
 * describeSigningKeyStoreContract('memory', memoryHarness);
 * ```
 */
export function describeSigningKeyStoreContract(
  name: string,
  makeStores: () => Promise<StoresHarness>,
  options: StoreContractOptions = {},
): void {
  describe(`SigningKeyStore contract: ${name}`, () => {
    const ctx = useContractHarness(name, makeStores, options);

    it('round-trips every field, the public JWK included', async () => {
      const key = signingKey({ publicJwk: { kty: 'RSA', n: 'sXch', e: 'AQAB', key_ops: ['verify'] } });

      expect(await ctx.stores.signingKeys.create(key)).toBe(true);

      expect(await ctx.stores.signingKeys.list(T0)).toStrictEqual([key]);
    });

    it('refuses an existing kid and keeps the original', async () => {
      const original = signingKey();
      await ctx.stores.signingKeys.create(original);

      expect(await ctx.stores.signingKeys.create(signingKey({ kid: original.kid, alg: 'RS256' }))).toBe(
        false,
      );

      expect(await ctx.stores.signingKeys.list(T0)).toStrictEqual([original]);
    });

    it('lists unexpired keys newest first, retired ones included', async () => {
      const now = T0 + 40 * DAY;
      // Kids sort and insertion order both run against creation order, so only createdAt can order these.
      const oldest = signingKey({ kid: 'kid-c', createdAt: T0 + 10 * DAY });
      const retired = signingKey({ kid: 'kid-a', createdAt: T0 + 9 * DAY + 1, retiresAt: now - 1 });
      const newest = signingKey({ kid: 'kid-b', createdAt: T0 + 39 * DAY });
      const expired = signingKey({ kid: 'kid-d', createdAt: T0 + 9 * DAY, expiresAt: now });
      for (const key of [oldest, newest, expired, retired]) await ctx.stores.signingKeys.create(key);

      expect(kids(await ctx.stores.signingKeys.list(now))).toEqual(['kid-b', 'kid-c', 'kid-a']);
      expect(kids(await ctx.stores.signingKeys.list(now - 1))).toEqual(['kid-b', 'kid-c', 'kid-a', 'kid-d']);
    });

    it('lists nothing when there are no keys', async () => {
      expect(await ctx.stores.signingKeys.list(T0)).toEqual([]);
    });

    it('hands out copies: mutating input or output never changes the stored record', async () => {
      const publicJwk = { kty: 'OKP', crv: 'Ed25519', x: 'abc' };
      const key = signingKey({ publicJwk });
      await ctx.stores.signingKeys.create(key);
      publicJwk.x = 'tampered';

      const [first] = await ctx.stores.signingKeys.list(T0);
      (first?.publicJwk as Record<string, unknown>).x = 'tampered';

      expect((await ctx.stores.signingKeys.list(T0))[0]?.publicJwk).toEqual({
        kty: 'OKP',
        crv: 'Ed25519',
        x: 'abc',
      });
    });

    describe('deleteExpired', () => {
      it('removes the keys expired at `now` and returns how many', async () => {
        const now = T0 + 31 * DAY;
        const live = signingKey({ createdAt: T0 + DAY });
        await ctx.stores.signingKeys.create(signingKey());
        await ctx.stores.signingKeys.create(signingKey({ expiresAt: T0 + DAY }));
        await ctx.stores.signingKeys.create(live);

        expect(await ctx.stores.signingKeys.deleteExpired(now, 100)).toBe(2);

        expect(await ctx.stores.signingKeys.list(T0)).toStrictEqual([live]);
        expect(await ctx.stores.signingKeys.deleteExpired(now, 100)).toBe(0);
      });

      it('removes at most `limit` per call, and nothing for 0 or a negative limit', async () => {
        const now = T0 + 100 * DAY;
        for (let i = 0; i < 5; i += 1) await ctx.stores.signingKeys.create(signingKey());

        expect(await ctx.stores.signingKeys.deleteExpired(now, 0)).toBe(0);
        expect(await ctx.stores.signingKeys.deleteExpired(now, -1)).toBe(0);
        expect(await ctx.stores.signingKeys.deleteExpired(now, 2)).toBe(2);
        expect(await ctx.stores.signingKeys.deleteExpired(now, 2)).toBe(2);
        expect(await ctx.stores.signingKeys.deleteExpired(now, 2)).toBe(1);
      });
    });

    it('admits exactly one of 10 concurrent creates of the same kid', async () => {
      const pool = await ctx.racers();
      const kid = unique('kid');
      const candidates = Array.from({ length: 10 }, () => signingKey({ kid }));

      const results = await Promise.all(candidates.map((key, i) => racer(pool, i).signingKeys.create(key)));

      expect(results.filter((created) => created)).toHaveLength(1);
      expect(await ctx.stores.signingKeys.list(T0)).toStrictEqual([candidates[results.indexOf(true)]]);
    });

    if (options.durable) {
      it('keeps signing keys across close and reopen', async () => {
        const keys = [signingKey({ createdAt: T0 + 1 }), signingKey()];
        for (const key of keys) await ctx.stores.signingKeys.create(key);

        const reopened = await ctx.reopen();

        expect(await reopened.signingKeys.list(T0 + 1)).toStrictEqual(keys);
      });
    }
  });
}
