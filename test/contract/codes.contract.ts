import { describe, expect, it } from 'vitest';
import type { AuthorizationCodeRecord } from '../../src/stores/ports.js';
import {
  HOUR,
  MINUTE,
  present,
  racer,
  type StoreContractOptions,
  type StoresHarness,
  sorted,
  T0,
  unique,
  useContractHarness,
} from './harness.js';

const CODE_TTL = MINUTE;

function codeRecord(overrides: Partial<AuthorizationCodeRecord> = {}): AuthorizationCodeRecord {
  const createdAt = overrides.createdAt ?? T0;
  return {
    codeHash: unique('code-hash'),
    grantId: unique('grant'),
    clientId: unique('client'),
    redirectUri: 'https://app.example.test/callback?state=é',
    codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    resource: 'https://mcp.example.test/mcp',
    scopes: ['mcp:tools', 'offline_access'],
    principal: {
      subject: unique('sub'),
      idp: 'local',
      email: 'alice@example.test',
      name: 'Alice',
      claims: { org: 'acme', roles: ['admin', 'dev'], level: 3 },
    },
    authTime: createdAt - MINUTE,
    createdAt,
    expiresAt: createdAt + CODE_TTL,
    ...overrides,
  };
}

/**
 * Registers the `AuthorizationCodeStore` contract (see `src/stores/ports.ts`) for one adapter.
 *
 * @example
 * ```ts
 * describeAuthorizationCodeStoreContract('memory', memoryHarness);
 * ```
 */
export function describeAuthorizationCodeStoreContract(
  name: string,
  makeStores: () => Promise<StoresHarness>,
  options: StoreContractOptions = {},
): void {
  describe(`AuthorizationCodeStore contract: ${name}`, () => {
    const ctx = useContractHarness(name, makeStores, options);

    it('consumes a code once, round-tripping every field', async () => {
      const code = codeRecord();
      await ctx.stores.codes.create(code);

      const result = await ctx.stores.codes.consume(code.codeHash, T0);

      expect(result).toStrictEqual({ status: 'consumed', record: code });
    });

    it('keeps a principal without optional fields without them', async () => {
      const code = codeRecord({ principal: { subject: 'alice', idp: 'local' } });
      await ctx.stores.codes.create(code);

      const result = await ctx.stores.codes.consume(code.codeHash, T0);

      expect(result?.record).toStrictEqual(code);
      expect(result?.record.principal).not.toHaveProperty('email');
      expect(result?.record.principal).not.toHaveProperty('claims');
    });

    // req: RFC6749-4.1.2-CODE-SINGLE-USE
    it('reports every later consumption as replayed until the code expires', async () => {
      const code = codeRecord();
      await ctx.stores.codes.create(code);
      await ctx.stores.codes.consume(code.codeHash, T0);

      expect(await ctx.stores.codes.consume(code.codeHash, T0 + 1)).toStrictEqual({
        status: 'replayed',
        record: code,
      });
      expect((await ctx.stores.codes.consume(code.codeHash, code.expiresAt - 1))?.status).toBe('replayed');
      expect(await ctx.stores.codes.consume(code.codeHash, code.expiresAt)).toBeUndefined();
    });

    it('returns undefined for an unknown code', async () => {
      await ctx.stores.codes.create(codeRecord());
      expect(await ctx.stores.codes.consume('code-hash-unknown', T0)).toBeUndefined();
    });

    // req: RFC6749-4.1.2-CODE-EXPIRY
    it('never consumes an expired code, and does not mark it consumed', async () => {
      const code = codeRecord();
      await ctx.stores.codes.create(code);

      expect(await ctx.stores.codes.consume(code.codeHash, code.expiresAt)).toBeUndefined();
      expect(await ctx.stores.codes.consume(code.codeHash, code.expiresAt + MINUTE)).toBeUndefined();
      // Still unconsumed: a consume inside its lifetime (a clock skewed back) is the first.
      expect((await ctx.stores.codes.consume(code.codeHash, T0))?.status).toBe('consumed');
    });

    it('rejects a second code with the same hash and keeps the original', async () => {
      const original = codeRecord();
      await ctx.stores.codes.create(original);

      await expect(
        ctx.stores.codes.create(codeRecord({ codeHash: original.codeHash, clientId: 'client-impostor' })),
      ).rejects.toBeInstanceOf(Error);

      expect(await ctx.stores.codes.consume(original.codeHash, T0)).toStrictEqual({
        status: 'consumed',
        record: original,
      });
    });

    it('hands out copies: mutating input or output never changes the stored record', async () => {
      const scopes = ['mcp:tools'];
      const code = codeRecord({ scopes });
      await ctx.stores.codes.create(code);
      scopes.push('admin');

      const first = await ctx.stores.codes.consume(code.codeHash, T0);
      (present(first).record.scopes as string[]).push('admin');
      (present(first).record.principal.claims as Record<string, unknown>).org = 'evil';

      const again = await ctx.stores.codes.consume(code.codeHash, T0);
      expect(again?.record.scopes).toEqual(['mcp:tools']);
      expect(again?.record.principal.claims?.org).toBe('acme');
    });

    describe('deleteExpired', () => {
      it('removes expired codes, consumed or not, and returns how many', async () => {
        const now = T0 + 10 * MINUTE;
        const unconsumed = codeRecord();
        const consumed = codeRecord();
        const expiringNow = codeRecord({ expiresAt: now });
        const live = codeRecord({ createdAt: now });
        const liveByOneMs = codeRecord({ expiresAt: now + 1 });
        for (const code of [unconsumed, consumed, expiringNow, live, liveByOneMs]) {
          await ctx.stores.codes.create(code);
        }
        await ctx.stores.codes.consume(consumed.codeHash, T0);

        expect(await ctx.stores.codes.deleteExpired(now, 100)).toBe(3);

        // Asked at a time they were live, the removed codes are gone for good.
        for (const code of [unconsumed, consumed, expiringNow]) {
          expect(await ctx.stores.codes.consume(code.codeHash, T0)).toBeUndefined();
        }
        expect((await ctx.stores.codes.consume(live.codeHash, now))?.status).toBe('consumed');
        expect((await ctx.stores.codes.consume(liveByOneMs.codeHash, now))?.status).toBe('consumed');
        expect(await ctx.stores.codes.deleteExpired(now, 100)).toBe(0);
      });

      it('removes at most `limit` per call', async () => {
        const now = T0 + HOUR;
        for (let i = 0; i < 5; i += 1) await ctx.stores.codes.create(codeRecord());

        const counts = [
          await ctx.stores.codes.deleteExpired(now, 2),
          await ctx.stores.codes.deleteExpired(now, 2),
          await ctx.stores.codes.deleteExpired(now, 2),
        ];

        expect(counts).toEqual([2, 2, 1]);
      });

      it('removes nothing when limit is 0 or negative', async () => {
        const now = T0 + HOUR;
        await ctx.stores.codes.create(codeRecord());
        await ctx.stores.codes.create(codeRecord());

        expect(await ctx.stores.codes.deleteExpired(now, 0)).toBe(0);
        expect(await ctx.stores.codes.deleteExpired(now, -1)).toBe(0);
        expect(await ctx.stores.codes.deleteExpired(now, 10)).toBe(2);
      });
    });

    describe('races', () => {
      it('gives `consumed` to exactly one of 20 concurrent consumptions, `replayed` to the rest', async () => {
        const pool = await ctx.racers();
        const code = codeRecord();
        await ctx.stores.codes.create(code);

        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => racer(pool, i).codes.consume(code.codeHash, T0 + i)),
        );

        expect(sorted(results.map((result) => result?.status ?? 'undefined'))).toEqual(
          sorted(['consumed', ...Array.from({ length: 19 }, () => 'replayed')]),
        );
        for (const result of results) expect(result?.record).toStrictEqual(code);
      });
    });

    if (options.durable) {
      it('remembers a consumed code across close and reopen', async () => {
        const consumed = codeRecord();
        const pending = codeRecord();
        await ctx.stores.codes.create(consumed);
        await ctx.stores.codes.create(pending);
        await ctx.stores.codes.consume(consumed.codeHash, T0);

        const reopened = await ctx.reopen();

        expect((await reopened.codes.consume(consumed.codeHash, T0 + 1))?.status).toBe('replayed');
        expect(await reopened.codes.consume(pending.codeHash, T0 + 1)).toStrictEqual({
          status: 'consumed',
          record: pending,
        });
      });
    }
  });
}
