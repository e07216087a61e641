import { describe, expect, it } from 'vitest';
import type { ConsentRecord } from '../../src/stores/ports.js';
import {
  DAY,
  present,
  racer,
  type StoreContractOptions,
  type StoresHarness,
  sorted,
  T0,
  unique,
  useContractHarness,
} from './harness.js';

function consentRecord(overrides: Partial<ConsentRecord> = {}): ConsentRecord {
  return {
    principalKey: `local#${unique('alice')}`,
    clientId: unique('client'),
    scopes: ['mcp:tools', 'offline_access'],
    grantedAt: T0,
    expiresAt: T0 + 90 * DAY,
    ...overrides,
  };
}

function clientIds(consents: readonly ConsentRecord[]): string[] {
  return sorted(consents.map((consent) => consent.clientId));
}

/**
 * Registers the `ConsentStore` contract (see `src/stores/ports.ts`) for one adapter.
 *
 * @example
 * ```ts
 * describeConsentStoreContract('memory', memoryHarness);
 * ```
 */
export function describeConsentStoreContract(
  name: string,
  makeStores: () => Promise<StoresHarness>,
  options: StoreContractOptions = {},
): void {
  describe(`ConsentStore contract: ${name}`, () => {
    const ctx = useContractHarness(name, makeStores, options);

    it('round-trips every field', async () => {
      const consent = consentRecord();
      await ctx.stores.consents.put(consent);

      expect(await ctx.stores.consents.get(consent.principalKey, consent.clientId, T0)).toStrictEqual(
        consent,
      );
    });

    it('replaces the consent of the same principal and client', async () => {
      const first = consentRecord();
      await ctx.stores.consents.put(first);
      const second = { ...first, scopes: ['mcp:tools'], grantedAt: T0 + DAY, expiresAt: T0 + 2 * DAY };

      await ctx.stores.consents.put(second);

      expect(await ctx.stores.consents.get(first.principalKey, first.clientId, T0 + DAY)).toStrictEqual(
        second,
      );
      expect(await ctx.stores.consents.listByPrincipal(first.principalKey, T0 + DAY)).toStrictEqual([second]);
    });

    it('returns undefined for another principal or another client', async () => {
      const consent = consentRecord();
      await ctx.stores.consents.put(consent);

      expect(await ctx.stores.consents.get('local#someone-else', consent.clientId, T0)).toBeUndefined();
      expect(await ctx.stores.consents.get(consent.principalKey, 'client-other', T0)).toBeUndefined();
    });

    it('is undefined from expiresAt on, live until then', async () => {
      const consent = consentRecord({ expiresAt: T0 + DAY });
      await ctx.stores.consents.put(consent);

      expect(
        await ctx.stores.consents.get(consent.principalKey, consent.clientId, T0 + DAY - 1),
      ).toStrictEqual(consent);
      expect(await ctx.stores.consents.get(consent.principalKey, consent.clientId, T0 + DAY)).toBeUndefined();
    });

    it('revives an expired consent when it is put again', async () => {
      const expired = consentRecord({ expiresAt: T0 + 1 });
      await ctx.stores.consents.put(expired);
      const renewed = { ...expired, grantedAt: T0 + DAY, expiresAt: T0 + 2 * DAY };

      await ctx.stores.consents.put(renewed);

      expect(await ctx.stores.consents.get(expired.principalKey, expired.clientId, T0 + DAY)).toStrictEqual(
        renewed,
      );
    });

    it('deletes once, then reports false', async () => {
      const consent = consentRecord();
      await ctx.stores.consents.put(consent);

      expect(await ctx.stores.consents.delete(consent.principalKey, consent.clientId)).toBe(true);
      expect(await ctx.stores.consents.delete(consent.principalKey, consent.clientId)).toBe(false);
      expect(await ctx.stores.consents.get(consent.principalKey, consent.clientId, T0)).toBeUndefined();
    });

    it('deleteByPrincipal removes every consent of the principal, expired too, and counts them', async () => {
      const principalKey = `local#${unique('alice')}`;
      const mine = [
        consentRecord({ principalKey }),
        consentRecord({ principalKey, expiresAt: T0 + 1 }),
        consentRecord({ principalKey }),
      ];
      const other = consentRecord({ clientId: mine[0]?.clientId });
      for (const consent of [...mine, other]) await ctx.stores.consents.put(consent);

      expect(await ctx.stores.consents.deleteByPrincipal(principalKey)).toBe(3);

      expect(await ctx.stores.consents.listByPrincipal(principalKey, T0)).toEqual([]);
      expect(await ctx.stores.consents.get(other.principalKey, other.clientId, T0)).toStrictEqual(other);
      expect(await ctx.stores.consents.deleteByPrincipal(principalKey)).toBe(0);
      expect(await ctx.stores.consents.deleteByPrincipal('local#nobody')).toBe(0);
    });

    it('counts each consent once when deleteByPrincipal calls race', async () => {
      const pool = await ctx.racers();
      const principalKey = `local#${unique('alice')}`;
      for (let i = 0; i < 10; i += 1) await ctx.stores.consents.put(consentRecord({ principalKey }));

      const counts = await Promise.all(
        Array.from({ length: 4 }, (_, i) => racer(pool, i).consents.deleteByPrincipal(principalKey)),
      );

      expect(counts.reduce((sum, count) => sum + count, 0)).toBe(10);
    });

    it("lists only the principal's live consents", async () => {
      const principalKey = `local#${unique('alice')}`;
      const now = T0 + DAY;
      const live = [
        consentRecord({ principalKey }),
        consentRecord({ principalKey, expiresAt: now + 1 }),
        consentRecord({ principalKey, grantedAt: now }),
      ];
      const expired = consentRecord({ principalKey, expiresAt: now });
      const otherPrincipal = consentRecord({ clientId: live[0]?.clientId });
      for (const consent of [expired, ...live, otherPrincipal]) await ctx.stores.consents.put(consent);

      const listed = await ctx.stores.consents.listByPrincipal(principalKey, now);

      expect(clientIds(listed)).toEqual(clientIds(live));
      for (const consent of listed)
        expect(consent).toStrictEqual(live.find((c) => c.clientId === consent.clientId));
      expect(await ctx.stores.consents.listByPrincipal('local#nobody', now)).toEqual([]);
    });

    it('hands out copies: mutating input or output never changes the stored record', async () => {
      const scopes = ['mcp:tools'];
      const consent = consentRecord({ scopes });
      await ctx.stores.consents.put(consent);
      scopes.push('admin');

      const first = await ctx.stores.consents.get(consent.principalKey, consent.clientId, T0);
      (present(first).scopes as string[]).push('admin');
      const listed = await ctx.stores.consents.listByPrincipal(consent.principalKey, T0);
      (present(listed[0]).scopes as string[]).push('admin');

      expect((await ctx.stores.consents.get(consent.principalKey, consent.clientId, T0))?.scopes).toEqual([
        'mcp:tools',
      ]);
    });

    it('keeps exactly one of 10 concurrent puts for the same principal and client', async () => {
      const pool = await ctx.racers();
      const base = consentRecord();
      const candidates = Array.from({ length: 10 }, (_, i) => ({ ...base, scopes: [`scope-${i}`] }));

      await Promise.all(candidates.map((consent, i) => racer(pool, i).consents.put(consent)));

      const listed = await ctx.stores.consents.listByPrincipal(base.principalKey, T0);
      expect(listed).toHaveLength(1);
      expect(candidates).toContainEqual(listed[0]);
    });

    if (options.durable) {
      it('keeps consents across close and reopen', async () => {
        const consent = consentRecord();
        await ctx.stores.consents.put(consent);

        const reopened = await ctx.reopen();

        expect(await reopened.consents.get(consent.principalKey, consent.clientId, T0)).toStrictEqual(
          consent,
        );
      });
    }
  });
}
