import { describe, expect, it } from 'vitest';
import type { GrantRecord, PrincipalSnapshot, RevocationRecord } from '../../src/stores/ports.js';
import {
  compareIds,
  DAY,
  HOUR,
  MINUTE,
  present,
  racer,
  readAllPages,
  type StoreContractOptions,
  type StoresHarness,
  sorted,
  T0,
  unique,
  useContractHarness,
} from './harness.js';

const LIFETIME = 30 * DAY;

function principal(overrides: Partial<PrincipalSnapshot> = {}): PrincipalSnapshot {
  return {
    subject: unique('sub'),
    idp: 'https://idp.example.test',
    email: 'alice@example.test',
    name: 'Alice',
    claims: { org: 'acme', roles: ['dev'] },
    ...overrides,
  };
}

function keyOf(snapshot: PrincipalSnapshot): string {
  return `${snapshot.idp}#${snapshot.subject}`;
}

/** A fresh grant holding its first refresh token (generation 1). */
function grantRecord(overrides: Partial<GrantRecord> = {}): GrantRecord {
  const createdAt = overrides.createdAt ?? T0;
  return {
    id: unique('grant'),
    clientId: unique('client'),
    principal: principal(),
    scopes: ['mcp:tools', 'offline_access'],
    resource: 'https://mcp.example.test/mcp',
    authTime: createdAt - MINUTE,
    createdAt,
    expiresAt: createdAt + LIFETIME,
    generation: 1,
    rotatedAt: createdAt,
    ...overrides,
  };
}

function ids(grants: readonly GrantRecord[]): string[] {
  return sorted(grants.map((grant) => grant.id));
}

/**
 * Registers the `GrantStore` contract (see `src/stores/ports.ts`) for one adapter: refresh-token families,
 * compare-and-swap rotation and first-wins revocation.
 *
 * @example
 * ```ts
 * describeGrantStoreContract('memory', memoryHarness);
 * ```
 */
export function describeGrantStoreContract(
  name: string,
  makeStores: () => Promise<StoresHarness>,
  options: StoreContractOptions = {},
): void {
  describe(`GrantStore contract: ${name}`, () => {
    const ctx = useContractHarness(name, makeStores, options);

    /** Creates `grant` with a fresh first refresh token and returns that token's hash. */
    async function createWithToken(grant: GrantRecord): Promise<string> {
      const tokenHash = unique('rt-hash');
      await ctx.stores.grants.create(grant, tokenHash);
      return tokenHash;
    }

    describe('create, get and findRefreshToken', () => {
      it('round-trips every field and finds the first refresh token as generation 1', async () => {
        const grant = grantRecord();
        const tokenHash = await createWithToken(grant);

        expect(await ctx.stores.grants.get(grant.id, T0)).toStrictEqual(grant);
        expect(await ctx.stores.grants.findRefreshToken(tokenHash)).toStrictEqual({
          grantId: grant.id,
          generation: 1,
        });
      });

      it('keeps absent optional fields absent, not null', async () => {
        const grant = grantRecord({ principal: { subject: 'alice', idp: 'local' } });
        await createWithToken(grant);

        const stored = await ctx.stores.grants.get(grant.id, T0);

        expect(stored).toStrictEqual(grant);
        expect(stored).not.toHaveProperty('revokedAt');
        expect(stored).not.toHaveProperty('graceResponse');
        expect(stored?.principal).not.toHaveProperty('email');
      });

      it('creates a grant without a refresh token', async () => {
        const grant = grantRecord({ generation: 0 });
        await ctx.stores.grants.create(grant);

        expect(await ctx.stores.grants.get(grant.id, T0)).toStrictEqual(grant);
      });

      it('returns undefined for an unknown grant or refresh token', async () => {
        await createWithToken(grantRecord());

        expect(await ctx.stores.grants.get('grant-unknown', T0)).toBeUndefined();
        expect(await ctx.stores.grants.findRefreshToken('rt-hash-unknown')).toBeUndefined();
      });

      it('is undefined from expiresAt on, live until then', async () => {
        const grant = grantRecord();
        await createWithToken(grant);

        expect(await ctx.stores.grants.get(grant.id, grant.expiresAt - 1)).toStrictEqual(grant);
        expect(await ctx.stores.grants.get(grant.id, grant.expiresAt)).toBeUndefined();
      });

      it('rejects a second grant with the same id and keeps the original', async () => {
        const original = grantRecord();
        await createWithToken(original);

        await expect(
          ctx.stores.grants.create(
            grantRecord({ id: original.id, clientId: 'client-impostor' }),
            unique('rt'),
          ),
        ).rejects.toBeInstanceOf(Error);

        expect(await ctx.stores.grants.get(original.id, T0)).toStrictEqual(original);
      });

      it('hands out copies: mutating input or output never changes the stored record', async () => {
        const scopes = ['mcp:tools'];
        const grant = grantRecord({ scopes });
        const tokenHash = await createWithToken(grant);
        scopes.push('admin');

        const first = await ctx.stores.grants.get(grant.id, T0);
        (present(first).scopes as string[]).push('admin');
        (present(present(first).principal.claims).roles as string[]).push('admin');
        const ref = await ctx.stores.grants.findRefreshToken(tokenHash);
        (ref as { generation: number }).generation = 99;

        const second = await ctx.stores.grants.get(grant.id, T0);
        expect(second?.scopes).toEqual(['mcp:tools']);
        expect(second?.principal.claims?.roles).toEqual(['dev']);
        expect((await ctx.stores.grants.findRefreshToken(tokenHash))?.generation).toBe(1);
      });
    });

    describe('rotate (compare-and-swap)', () => {
      it('moves to the next generation, sets rotatedAt and graceResponse, and records the new token', async () => {
        const grant = grantRecord();
        const first = await createWithToken(grant);
        const second = unique('rt-hash');

        const rotated = await ctx.stores.grants.rotate(grant.id, 1, second, T0 + HOUR, 'sealed-response-2');

        const expected = {
          ...grant,
          generation: 2,
          rotatedAt: T0 + HOUR,
          graceResponse: 'sealed-response-2',
        };
        expect(rotated).toStrictEqual(expected);
        expect(await ctx.stores.grants.get(grant.id, T0 + HOUR)).toStrictEqual(expected);
        expect(await ctx.stores.grants.findRefreshToken(second)).toStrictEqual({
          grantId: grant.id,
          generation: 2,
        });
        expect(await ctx.stores.grants.findRefreshToken(first)).toStrictEqual({
          grantId: grant.id,
          generation: 1,
        });
      });

      it('finds every generation ever issued', async () => {
        const grant = grantRecord();
        const hashes = [await createWithToken(grant)];
        for (let generation = 1; generation <= 4; generation += 1) {
          const next = unique('rt-hash');
          expect(
            await ctx.stores.grants.rotate(grant.id, generation, next, T0 + generation, 'g'),
          ).toBeDefined();
          hashes.push(next);
        }

        const refs = await Promise.all(hashes.map((hash) => ctx.stores.grants.findRefreshToken(hash)));

        expect(refs).toStrictEqual([1, 2, 3, 4, 5].map((generation) => ({ grantId: grant.id, generation })));
        expect((await ctx.stores.grants.get(grant.id, T0 + 5))?.generation).toBe(5);
      });

      it('issues the first refresh token of a grant created without one', async () => {
        const grant = grantRecord({ generation: 0 });
        await ctx.stores.grants.create(grant);
        const tokenHash = unique('rt-hash');

        const rotated = await ctx.stores.grants.rotate(grant.id, 0, tokenHash, T0 + 1, undefined);

        expect(rotated?.generation).toBe(1);
        expect(await ctx.stores.grants.findRefreshToken(tokenHash)).toStrictEqual({
          grantId: grant.id,
          generation: 1,
        });
      });

      it('leaves graceResponse absent when rotated without one, clearing the previous one', async () => {
        const grant = grantRecord();
        await createWithToken(grant);
        await ctx.stores.grants.rotate(grant.id, 1, unique('rt-hash'), T0 + 1, 'sealed-response-2');

        const rotated = await ctx.stores.grants.rotate(grant.id, 2, unique('rt-hash'), T0 + 2, undefined);

        expect(rotated).not.toHaveProperty('graceResponse');
        expect(await ctx.stores.grants.get(grant.id, T0 + 2)).not.toHaveProperty('graceResponse');
      });

      it('refuses a stale or future generation and changes nothing', async () => {
        const grant = grantRecord();
        await createWithToken(grant);
        const current = await ctx.stores.grants.rotate(grant.id, 1, unique('rt-hash'), T0 + 1, 'g2');
        const stale = unique('rt-hash');
        const future = unique('rt-hash');

        expect(await ctx.stores.grants.rotate(grant.id, 1, stale, T0 + 2, 'stale')).toBeUndefined();
        expect(await ctx.stores.grants.rotate(grant.id, 3, future, T0 + 2, 'future')).toBeUndefined();

        expect(await ctx.stores.grants.get(grant.id, T0 + 2)).toStrictEqual(current);
        expect(await ctx.stores.grants.findRefreshToken(stale)).toBeUndefined();
        expect(await ctx.stores.grants.findRefreshToken(future)).toBeUndefined();
      });

      it('never rotates a revoked grant', async () => {
        const grant = grantRecord();
        await createWithToken(grant);
        await ctx.stores.grants.revoke(grant.id, T0 + 1, T0 + 1 + HOUR);
        const next = unique('rt-hash');

        expect(await ctx.stores.grants.rotate(grant.id, 1, next, T0 + 2, 'g2')).toBeUndefined();

        expect((await ctx.stores.grants.get(grant.id, T0 + 2))?.generation).toBe(1);
        expect(await ctx.stores.grants.findRefreshToken(next)).toBeUndefined();
      });

      it('never rotates a grant expired at rotatedAt', async () => {
        const grant = grantRecord();
        await createWithToken(grant);
        const next = unique('rt-hash');

        expect(await ctx.stores.grants.rotate(grant.id, 1, next, grant.expiresAt, 'g2')).toBeUndefined();

        expect(await ctx.stores.grants.findRefreshToken(next)).toBeUndefined();
        expect(await ctx.stores.grants.rotate(grant.id, 1, next, grant.expiresAt - 1, 'g2')).toBeDefined();
      });

      it('returns undefined for an unknown grant and records no token', async () => {
        const next = unique('rt-hash');
        expect(await ctx.stores.grants.rotate('grant-unknown', 1, next, T0, 'g2')).toBeUndefined();
        expect(await ctx.stores.grants.findRefreshToken(next)).toBeUndefined();
      });
    });

    /** The `grant` revocation entries in force at `now`, by grant id. */
    async function grantEntries(now: number): Promise<Map<string, RevocationRecord>> {
      const entries = await ctx.stores.revocations.listSince(0, now);
      return new Map(entries.filter((entry) => entry.kind === 'grant').map((entry) => [entry.id, entry]));
    }

    describe('revoke', () => {
      it('sets revokedAt once and returns the revoked record; get still returns it', async () => {
        const grant = grantRecord();
        await createWithToken(grant);

        const revoked = await ctx.stores.grants.revoke(grant.id, T0 + 5, T0 + 5 + HOUR);

        expect(revoked).toStrictEqual({ ...grant, revokedAt: T0 + 5 });
        expect(await ctx.stores.grants.revoke(grant.id, T0 + 6, T0 + 6 + HOUR)).toBeUndefined();
        expect(await ctx.stores.grants.get(grant.id, T0 + 6)).toStrictEqual({ ...grant, revokedAt: T0 + 5 });
      });

      it('adds the grant revocation entry in the same step', async () => {
        const grant = grantRecord();
        await createWithToken(grant);

        await ctx.stores.grants.revoke(grant.id, T0 + 5, T0 + 5 + HOUR);

        expect(await ctx.stores.revocations.listSince(0, T0 + 5)).toStrictEqual([
          { kind: 'grant', id: grant.id, revokedAt: T0 + 5, expiresAt: T0 + 5 + HOUR },
        ]);
      });

      it('keeps the first entry when the grant is revoked again', async () => {
        const grant = grantRecord();
        await createWithToken(grant);

        await ctx.stores.grants.revoke(grant.id, T0 + 5, T0 + 5 + HOUR);
        await ctx.stores.grants.revoke(grant.id, T0 + 6, T0 + 6 + 2 * HOUR);

        expect(await ctx.stores.revocations.listSince(0, T0 + 6)).toStrictEqual([
          { kind: 'grant', id: grant.id, revokedAt: T0 + 5, expiresAt: T0 + 5 + HOUR },
        ]);
      });

      it('returns undefined for an unknown grant, yet adds its entry (a replayed code names a grant never stored)', async () => {
        expect(await ctx.stores.grants.revoke('grant-unknown', T0, T0 + HOUR)).toBeUndefined();

        expect(await ctx.stores.revocations.listSince(0, T0)).toStrictEqual([
          { kind: 'grant', id: 'grant-unknown', revokedAt: T0, expiresAt: T0 + HOUR },
        ]);
      });

      it('moves the revocation watermark, so other processes reload', async () => {
        const grant = grantRecord();
        await createWithToken(grant);
        const before = await ctx.stores.revocations.watermark();

        await ctx.stores.grants.revoke(grant.id, T0 + 5, T0 + 5 + HOUR);

        expect(await ctx.stores.revocations.watermark()).toBeGreaterThan(before);
      });
    });

    describe('revokeByPrincipal', () => {
      it('revokes every unrevoked grant of the principal, with their entries, and returns them', async () => {
        const owner = principal();
        const now = T0 + DAY;
        const live = [
          grantRecord({ principal: owner }),
          grantRecord({ principal: owner, createdAt: T0 + 1 }),
        ];
        // Its last access tokens can outlive it until the sweep removes it.
        const expiredUnswept = grantRecord({ principal: owner, expiresAt: now });
        const alreadyRevoked = grantRecord({ principal: owner });
        const sameSubjectOtherIdp = grantRecord({ principal: { ...owner, idp: 'local' } });
        const otherSubject = grantRecord({ principal: principal() });
        for (const grant of [...live, expiredUnswept, alreadyRevoked, sameSubjectOtherIdp, otherSubject]) {
          await createWithToken(grant);
        }
        await ctx.stores.grants.revoke(alreadyRevoked.id, T0 + 1, now + HOUR);

        const revoked = await ctx.stores.grants.revokeByPrincipal(keyOf(owner), now, now + HOUR);

        const expected = [...live, expiredUnswept].map((grant) => ({ ...grant, revokedAt: now }));
        expect(ids(revoked)).toEqual(ids(expected));
        for (const grant of revoked) expect(grant).toStrictEqual(expected.find((g) => g.id === grant.id));
        const entries = await grantEntries(now);
        for (const grant of expected) {
          expect(entries.get(grant.id)).toStrictEqual({
            kind: 'grant',
            id: grant.id,
            revokedAt: now,
            expiresAt: now + HOUR,
          });
        }
        expect(entries.get(alreadyRevoked.id)?.revokedAt).toBe(T0 + 1);
        expect(entries.has(sameSubjectOtherIdp.id)).toBe(false);
        expect(entries.has(otherSubject.id)).toBe(false);
        expect((await ctx.stores.grants.get(alreadyRevoked.id, now))?.revokedAt).toBe(T0 + 1);
        expect(await ctx.stores.grants.get(sameSubjectOtherIdp.id, now)).toStrictEqual(sameSubjectOtherIdp);
        expect(await ctx.stores.grants.listByPrincipal(keyOf(owner), now)).toEqual([]);
        expect(await ctx.stores.grants.rotate(live[0]!.id, 1, unique('rt'), now, 'g')).toBeUndefined();
      });

      it('returns an empty list when the principal has nothing left to revoke', async () => {
        const owner = principal();
        await createWithToken(grantRecord({ principal: owner }));
        await ctx.stores.grants.revokeByPrincipal(keyOf(owner), T0 + 1, T0 + HOUR);

        expect(await ctx.stores.grants.revokeByPrincipal(keyOf(owner), T0 + 2, T0 + HOUR)).toEqual([]);
        expect(await ctx.stores.grants.revokeByPrincipal('local#nobody', T0, T0 + HOUR)).toEqual([]);
      });
    });

    describe('listByPrincipal', () => {
      it("returns only the principal's unrevoked, unexpired grants", async () => {
        const owner = principal();
        const now = T0 + DAY;
        const live = [
          grantRecord({ principal: owner }),
          grantRecord({ principal: owner, createdAt: now, clientId: 'client-b' }),
          grantRecord({ principal: owner, expiresAt: now + 1 }),
        ];
        const revoked = grantRecord({ principal: owner });
        const expired = grantRecord({ principal: owner, expiresAt: now });
        const sameSubjectOtherIdp = grantRecord({ principal: { ...owner, idp: 'local' } });
        const otherSubject = grantRecord({ principal: { ...owner, subject: unique('sub') } });
        for (const grant of [...live, revoked, expired, sameSubjectOtherIdp, otherSubject]) {
          await createWithToken(grant);
        }
        await ctx.stores.grants.revoke(revoked.id, T0 + 1, T0 + 1 + HOUR);

        const listed = await ctx.stores.grants.listByPrincipal(keyOf(owner), now);

        expect(ids(listed)).toEqual(ids(live));
        for (const grant of listed) expect(grant).toStrictEqual(live.find((g) => g.id === grant.id));
      });

      it('returns an empty list for an unknown principal', async () => {
        await createWithToken(grantRecord());
        expect(await ctx.stores.grants.listByPrincipal('local#nobody', T0)).toEqual([]);
      });
    });

    describe('list', () => {
      /**
       * Grants of several principals not expired at `now` (one revoked, which the listing still shows), and
       * expired ones; ties on createdAt that only the id orders.
       */
      async function mixedGrants(now: number): Promise<GrantRecord[]> {
        const live = Array.from({ length: 9 }, (_, i) =>
          grantRecord({
            id: `grant-${String(20 - i).padStart(2, '0')}-${unique('g')}`,
            principal: principal({ subject: `sub-${i % 3}` }),
            createdAt: T0 + Math.floor(i / 2) * MINUTE,
          }),
        );
        const expired = [
          grantRecord({ createdAt: T0 + MINUTE, expiresAt: now }),
          grantRecord({ createdAt: T0 - LIFETIME }),
        ];
        for (const grant of [...live.slice(4), ...expired, ...live.slice(0, 4)]) await createWithToken(grant);
        const target = live[5] as GrantRecord;
        await ctx.stores.grants.revoke(target.id, T0 + HOUR, T0 + 2 * HOUR);
        live[5] = { ...target, revokedAt: T0 + HOUR };
        return live.sort((a, b) => a.createdAt - b.createdAt || compareIds(a.id, b.id));
      }

      it("returns every principal's grants not expired at now, revoked included, oldest first, at most limit", async () => {
        const now = T0 + DAY;
        const live = await mixedGrants(now);

        expect(await ctx.stores.grants.list(now, { limit: 100 })).toStrictEqual(live);
        expect(await ctx.stores.grants.list(now, { limit: 4 })).toStrictEqual(live.slice(0, 4));
      });

      it('pages through every grant without a duplicate or a gap', async () => {
        const now = T0 + DAY;
        const live = await mixedGrants(now);

        for (const limit of [1, 2, 5]) {
          const { records } = await readAllPages(
            (page) => ctx.stores.grants.list(now, page),
            (g) => g.id,
            limit,
          );
          expect(records.map((grant) => grant.id)).toEqual(live.map((grant) => grant.id));
        }
      });

      it('returns an empty list when there are no grants', async () => {
        expect(await ctx.stores.grants.list(T0, { limit: 10 })).toEqual([]);
      });
    });

    describe('deleteExpired', () => {
      it('removes expired grants with every refresh token they issued, and returns how many', async () => {
        const now = T0 + LIFETIME;
        const expired = grantRecord();
        const expiredHashes = [await createWithToken(expired)];
        const rotatedTo = unique('rt-hash');
        await ctx.stores.grants.rotate(expired.id, 1, rotatedTo, T0 + 1, 'g2');
        expiredHashes.push(rotatedTo);
        const revokedExpired = grantRecord({ expiresAt: T0 + DAY });
        expiredHashes.push(await createWithToken(revokedExpired));
        await ctx.stores.grants.revoke(revokedExpired.id, T0 + 1, T0 + 1 + HOUR);
        const revokedLive = grantRecord({ createdAt: now });
        const revokedLiveHash = await createWithToken(revokedLive);
        await ctx.stores.grants.revoke(revokedLive.id, now, now + HOUR);
        const live = grantRecord({ expiresAt: now + 1 });
        const liveHash = await createWithToken(live);

        expect(await ctx.stores.grants.deleteExpired(now, 100)).toBe(2);

        for (const hash of expiredHashes)
          expect(await ctx.stores.grants.findRefreshToken(hash)).toBeUndefined();
        expect(await ctx.stores.grants.get(expired.id, T0)).toBeUndefined();
        expect(await ctx.stores.grants.revoke(revokedExpired.id, T0, T0 + HOUR)).toBeUndefined();
        // A revoked grant stays until it expires, so a reused token of its family is still recognised.
        expect(await ctx.stores.grants.findRefreshToken(revokedLiveHash)).toStrictEqual({
          grantId: revokedLive.id,
          generation: 1,
        });
        expect(await ctx.stores.grants.findRefreshToken(liveHash)).toStrictEqual({
          grantId: live.id,
          generation: 1,
        });
        expect(await ctx.stores.grants.get(live.id, now)).toStrictEqual(live);
        expect(await ctx.stores.grants.deleteExpired(now, 100)).toBe(0);
      });

      it('removes at most `limit` per call', async () => {
        const now = T0 + LIFETIME;
        for (let i = 0; i < 5; i += 1) await createWithToken(grantRecord());

        const counts = [
          await ctx.stores.grants.deleteExpired(now, 2),
          await ctx.stores.grants.deleteExpired(now, 2),
          await ctx.stores.grants.deleteExpired(now, 2),
        ];

        expect(counts).toEqual([2, 2, 1]);
      });

      it('removes nothing when limit is 0 or negative', async () => {
        const now = T0 + LIFETIME;
        const hash = await createWithToken(grantRecord());

        expect(await ctx.stores.grants.deleteExpired(now, 0)).toBe(0);
        expect(await ctx.stores.grants.deleteExpired(now, -1)).toBe(0);
        expect(await ctx.stores.grants.findRefreshToken(hash)).toBeDefined();
        expect(await ctx.stores.grants.deleteExpired(now, 10)).toBe(1);
      });
    });

    describe('races', () => {
      it('lets exactly one of 10 concurrent rotations of each generation win', async () => {
        const pool = await ctx.racers();
        const grant = grantRecord();
        await createWithToken(grant);

        for (const generation of [1, 2, 3]) {
          const hashes = Array.from({ length: 10 }, () => unique('rt-hash'));
          const results = await Promise.all(
            hashes.map((hash, i) =>
              racer(pool, i).grants.rotate(grant.id, generation, hash, T0 + generation, `g${generation + 1}`),
            ),
          );

          const winners = results.filter((result) => result !== undefined);
          expect(winners).toHaveLength(1);
          expect(winners[0]?.generation).toBe(generation + 1);
          const refs = await Promise.all(hashes.map((hash) => ctx.stores.grants.findRefreshToken(hash)));
          expect(refs.filter((ref) => ref !== undefined)).toStrictEqual([
            { grantId: grant.id, generation: generation + 1 },
          ]);
        }
      });

      it('gives the record to exactly one of 10 concurrent revocations', async () => {
        const pool = await ctx.racers();
        const grant = grantRecord();
        await createWithToken(grant);

        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => racer(pool, i).grants.revoke(grant.id, T0 + i, T0 + i + HOUR)),
        );

        const winners = results.filter((result) => result !== undefined);
        expect(winners).toHaveLength(1);
        expect(await ctx.stores.grants.get(grant.id, T0)).toStrictEqual(winners[0]);
      });

      it('never rotates past a concurrent revocation', async () => {
        const pool = await ctx.racers();
        const grant = grantRecord();
        await createWithToken(grant);

        const [revoked, ...rotations] = await Promise.all([
          racer(pool, 0).grants.revoke(grant.id, T0 + 1, T0 + 1 + HOUR),
          ...Array.from({ length: 5 }, (_, i) =>
            racer(pool, i + 1).grants.rotate(grant.id, 1, unique('rt-hash'), T0 + 1, 'g2'),
          ),
        ]);

        expect(revoked).toBeDefined();
        const winners = rotations.filter((result) => result !== undefined);
        expect(winners.length).toBeLessThanOrEqual(1);
        for (const winner of winners) expect(winner).not.toHaveProperty('revokedAt');
        const stored = await ctx.stores.grants.get(grant.id, T0 + 2);
        expect(stored?.revokedAt).toBe(T0 + 1);
        expect(stored?.generation).toBe(1 + winners.length);
        expect(
          await ctx.stores.grants.rotate(grant.id, stored?.generation ?? -1, unique('rt'), T0 + 2, 'g'),
        ).toBe(undefined);
      });
      it('revokes each grant once, with its entry, when revoke and revokeByPrincipal race', async () => {
        const pool = await ctx.racers();
        const owner = principal();
        const grants = Array.from({ length: 6 }, () => grantRecord({ principal: owner }));
        for (const grant of grants) await createWithToken(grant);
        const now = T0 + MINUTE;

        const [byPrincipal, single] = await Promise.all([
          Promise.all(
            Array.from({ length: 4 }, (_, i) =>
              racer(pool, i).grants.revokeByPrincipal(keyOf(owner), now + i, now + HOUR),
            ),
          ),
          Promise.all(
            grants.flatMap((grant, g) =>
              [0, 1].map((i) => racer(pool, g + i).grants.revoke(grant.id, now + 10 + i, now + HOUR)),
            ),
          ),
        ]);

        const winners = [...byPrincipal.flat(), ...single.filter((grant) => grant !== undefined)];
        expect(winners.map((grant) => grant.id).sort()).toEqual(ids(grants));
        const entries = await grantEntries(now);
        for (const winner of winners) {
          expect(entries.get(winner.id)?.revokedAt).toBe(winner.revokedAt);
          expect((await ctx.stores.grants.get(winner.id, now))?.revokedAt).toBe(winner.revokedAt);
        }
      });
    });

    if (options.durable) {
      it('keeps grants, rotations, revocations and every token across close and reopen', async () => {
        const grant = grantRecord();
        const first = await createWithToken(grant);
        const second = unique('rt-hash');
        const rotated = await ctx.stores.grants.rotate(grant.id, 1, second, T0 + 1, 'sealed');
        const revoked = grantRecord();
        await createWithToken(revoked);
        await ctx.stores.grants.revoke(revoked.id, T0 + 2, T0 + 2 + HOUR);

        const reopened = await ctx.reopen();

        expect(await reopened.grants.get(grant.id, T0 + 2)).toStrictEqual(rotated);
        expect(await reopened.grants.findRefreshToken(first)).toStrictEqual({
          grantId: grant.id,
          generation: 1,
        });
        expect(await reopened.grants.findRefreshToken(second)).toStrictEqual({
          grantId: grant.id,
          generation: 2,
        });
        expect((await reopened.grants.get(revoked.id, T0 + 2))?.revokedAt).toBe(T0 + 2);
        expect(await reopened.revocations.listSince(0, T0 + 2)).toStrictEqual([
          { kind: 'grant', id: revoked.id, revokedAt: T0 + 2, expiresAt: T0 + 2 + HOUR },
        ]);
        expect(ids(await reopened.grants.listByPrincipal(keyOf(grant.principal), T0 + 2))).toEqual([
          grant.id,
        ]);
      });
    }
  });
}
