import { describe, expect, it } from 'vitest';
import type { RevocationRecord } from '../../src/stores/ports.js';
import {
  HOUR,
  MINUTE,
  racer,
  type StoreContractOptions,
  type StoresHarness,
  T0,
  unique,
  useContractHarness,
} from './harness.js';

function revocation(overrides: Partial<RevocationRecord> = {}): RevocationRecord {
  return { kind: 'jti', id: unique('jti'), revokedAt: T0, expiresAt: T0 + HOUR, ...overrides };
}

/**
 * Registers the `RevocationStore` contract (see `src/stores/ports.ts`) for one adapter.
 *
 * @example
 * ```ts
 * describeRevocationStoreContract('memory', memoryHarness);
 * ```
 */
export function describeRevocationStoreContract(
  name: string,
  makeStores: () => Promise<StoresHarness>,
  options: StoreContractOptions = {},
): void {
  describe(`RevocationStore contract: ${name}`, () => {
    const ctx = useContractHarness(name, makeStores, options);

    it('lists what was added', async () => {
      const grant = revocation({ kind: 'grant', id: unique('grant') });
      await ctx.stores.revocations.add(grant);

      expect(await ctx.stores.revocations.listSince(T0, T0)).toStrictEqual([grant]);
    });

    it('is idempotent: the same kind and id twice stays one entry, the first', async () => {
      const first = revocation();
      await ctx.stores.revocations.add(first);
      await ctx.stores.revocations.add({ ...first, revokedAt: T0 + MINUTE, expiresAt: T0 + 2 * HOUR });
      await ctx.stores.revocations.add(first);

      expect(await ctx.stores.revocations.listSince(0, T0)).toStrictEqual([first]);
    });

    it('keeps a grant and a jti with the same id apart', async () => {
      const id = unique('shared');
      const grant = revocation({ kind: 'grant', id });
      const jti = revocation({ kind: 'jti', id, revokedAt: T0 + 1 });
      await ctx.stores.revocations.add(grant);
      await ctx.stores.revocations.add(jti);

      expect(await ctx.stores.revocations.listSince(0, T0)).toStrictEqual([grant, jti]);
    });

    it('lists entries revoked at or after `since` and in force at `now`, oldest first', async () => {
      const since = T0 + 10 * MINUTE;
      const now = T0 + 30 * MINUTE;
      const atSince = revocation({ revokedAt: since });
      const later = revocation({ kind: 'grant', revokedAt: since + 5 * MINUTE });
      const latest = revocation({ revokedAt: since + 10 * MINUTE, expiresAt: now + 1 });
      const beforeSince = revocation({ revokedAt: since - 1 });
      const expiredAtNow = revocation({ revokedAt: since + MINUTE, expiresAt: now });
      for (const record of [latest, beforeSince, later, expiredAtNow, atSince]) {
        await ctx.stores.revocations.add(record);
      }

      expect(await ctx.stores.revocations.listSince(since, now)).toStrictEqual([atSince, later, latest]);
      expect(await ctx.stores.revocations.listSince(since + 10 * MINUTE + 1, now)).toEqual([]);
    });

    it('lists nothing when nothing was revoked', async () => {
      expect(await ctx.stores.revocations.listSince(0, T0)).toEqual([]);
    });

    describe('deleteExpired', () => {
      it('removes the entries expired at `now` and returns how many', async () => {
        const now = T0 + HOUR;
        const live = revocation({ expiresAt: now + 1 });
        await ctx.stores.revocations.add(revocation({ expiresAt: now }));
        await ctx.stores.revocations.add(revocation({ kind: 'grant', expiresAt: T0 + 1 }));
        await ctx.stores.revocations.add(live);

        expect(await ctx.stores.revocations.deleteExpired(now, 100)).toBe(2);

        // Asked about a time they were in force, the removed entries are gone for good.
        expect(await ctx.stores.revocations.listSince(0, T0)).toStrictEqual([live]);
        expect(await ctx.stores.revocations.deleteExpired(now, 100)).toBe(0);
      });

      it('removes at most `limit` per call, and nothing for 0 or a negative limit', async () => {
        const now = T0 + 2 * HOUR;
        for (let i = 0; i < 5; i += 1) await ctx.stores.revocations.add(revocation());

        expect(await ctx.stores.revocations.deleteExpired(now, 0)).toBe(0);
        expect(await ctx.stores.revocations.deleteExpired(now, -1)).toBe(0);
        expect(await ctx.stores.revocations.deleteExpired(now, 2)).toBe(2);
        expect(await ctx.stores.revocations.deleteExpired(now, 2)).toBe(2);
        expect(await ctx.stores.revocations.deleteExpired(now, 2)).toBe(1);
      });
    });

    describe('watermark', () => {
      it('grows with every entry added', async () => {
        const first = await ctx.stores.revocations.watermark();
        await ctx.stores.revocations.add(revocation());
        const second = await ctx.stores.revocations.watermark();
        await ctx.stores.revocations.add(revocation({ kind: 'grant' }));
        const third = await ctx.stores.revocations.watermark();

        expect(Number.isFinite(first)).toBe(true);
        expect(second).toBeGreaterThan(first);
        expect(third).toBeGreaterThan(second);
      });

      it('never decreases when expired entries are removed, and grows again after', async () => {
        const records = [revocation(), revocation({ kind: 'grant' })];
        for (const record of records) await ctx.stores.revocations.add(record);
        const before = await ctx.stores.revocations.watermark();

        expect(await ctx.stores.revocations.deleteExpired(T0 + 2 * HOUR, 100)).toBe(2);
        const afterSweep = await ctx.stores.revocations.watermark();
        // The same kind and id again: a store that reuses a freed slot must still move forward.
        await ctx.stores.revocations.add({
          ...records[1]!,
          revokedAt: T0 + 2 * HOUR,
          expiresAt: T0 + 3 * HOUR,
        });
        const afterAdd = await ctx.stores.revocations.watermark();

        expect(afterSweep).toBeGreaterThanOrEqual(before);
        expect(afterAdd).toBeGreaterThan(afterSweep);
        expect(afterAdd).toBeGreaterThan(before);
      });

      it('grows for a reader when another connection adds an entry', async () => {
        const pool = await ctx.racers();
        const reader = racer(pool, 0);
        const writer = racer(pool, 1);
        const before = await reader.revocations.watermark();

        await writer.revocations.add(revocation());

        expect(await reader.revocations.watermark()).toBeGreaterThan(before);
      });
    });

    it('keeps one entry when 10 concurrent adds of the same revocation race', async () => {
      const pool = await ctx.racers();
      const record = revocation({ kind: 'grant' });

      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          racer(pool, i).revocations.add({ ...record, revokedAt: record.revokedAt + i }),
        ),
      );

      const listed = await ctx.stores.revocations.listSince(0, T0);
      expect(listed).toHaveLength(1);
      expect(listed[0]?.id).toBe(record.id);
    });

    if (options.durable) {
      it('keeps revocations across close and reopen', async () => {
        const records = [revocation(), revocation({ kind: 'grant', revokedAt: T0 + 1 })];
        for (const record of records) await ctx.stores.revocations.add(record);
        const watermark = await ctx.stores.revocations.watermark();

        const reopened = await ctx.reopen();

        expect(await reopened.revocations.listSince(0, T0)).toStrictEqual(records);
        expect(await reopened.revocations.watermark()).toBeGreaterThanOrEqual(watermark);
      });
    }
  });
}
