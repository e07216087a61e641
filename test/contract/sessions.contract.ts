import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isGatehouseError } from '../../src/errors/gatehouse-error.js';
import type { SessionRecord, SessionStore } from '../../src/stores/ports.js';
import type { StoreContractOptions, StoresHarness } from './harness.js';

/** The harness and options every store contract shares (see `harness.ts`). */
export type SessionStoreHarness = StoresHarness;
export type SessionStoreContractOptions = StoreContractOptions;

const T0 = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const IDLE_MS = 30 * MINUTE;
const ABSOLUTE_MS = 8 * HOUR;
/** A cap no test reaches, kept finite so every backend can bind it as an integer. */
const NO_CAP = 1_000_000;

function newPrincipal(): string {
  return `https://idp.example.test/#user-${randomUUID()}`;
}

function sessionRecord(overrides: Partial<SessionRecord> = {}): SessionRecord {
  const createdAt = overrides.createdAt ?? T0;
  return {
    id: `sess-${randomUUID()}`,
    principalKey: newPrincipal(),
    kind: 'streamable-http',
    createdAt,
    lastSeenAt: createdAt,
    idleExpiresAt: createdAt + IDLE_MS,
    absoluteExpiresAt: createdAt + ABSOLUTE_MS,
    version: 1,
    data: { protocolVersion: '2025-06-18' },
    ...overrides,
  };
}

function ids(records: readonly SessionRecord[]): string[] {
  return records.map((record) => record.id);
}

function byId(records: readonly SessionRecord[]): SessionRecord[] {
  return records.slice().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function sortedIds(records: readonly SessionRecord[]): string[] {
  return ids(records).sort();
}

/**
 * Registers the `SessionStore` contract (see `src/stores/ports.ts`) for one adapter. Every adapter
 * (memory, SQLite, Postgres, Redis) runs this same suite, races included.
 *
 * @example
 * ```ts
 * describeSessionStoreContract('memory', async () => {
 *   const stores = createMemoryStores();
 *   return { stores, cleanup: () => stores.close() };
 * });
 * ```
 */
export function describeSessionStoreContract(
  name: string,
  makeStores: () => Promise<SessionStoreHarness>,
  options: SessionStoreContractOptions = {},
): void {
  describe(`SessionStore contract: ${name}`, () => {
    let harness: SessionStoreHarness;
    let store: SessionStore;

    beforeEach(async () => {
      harness = await makeStores();
      store = harness.stores.sessions;
    });

    afterEach(async () => {
      await harness.cleanup();
    });

    /** The stores race tests spread their calls over: one, or two connections to the same data. */
    async function racers(): Promise<SessionStore[]> {
      if (!options.twoConnections) return [store];
      if (harness.second === undefined) throw new Error(`${name}: twoConnections needs harness.second`);
      return [store, (await harness.second()).sessions];
    }

    async function createAll(records: readonly SessionRecord[]): Promise<void> {
      for (const record of records) {
        const result = await store.create(record, NO_CAP, record.createdAt);
        expect(result.created).toBe(true);
      }
    }

    describe('create and get', () => {
      it('round-trips every field, with data preserved as JSON and version 1', async () => {
        const record = sessionRecord({
          kind: 'legacy-sse',
          data: {
            protocolVersion: '2025-03-26',
            clientInfo: { name: 'inspector', version: '0.16.1' },
            capabilities: { roots: { listChanged: true }, sampling: {} },
            count: 42,
            ratio: 1.5,
            negative: -7,
            nothing: null,
            flags: [true, false],
            text: 'héllo ✓ 🚪 "quoted" \\ back',
          },
        });

        const result = await store.create(record, 5, T0);

        expect(result).toEqual({ created: true, activeCount: 0 });
        const stored = await store.get(record.id, T0);
        expect(stored).toEqual(record);
        expect(stored?.version).toBe(1);
      });

      it('returns undefined for an unknown id', async () => {
        await createAll([sessionRecord()]);
        expect(await store.get('sess-unknown', T0)).toBeUndefined();
      });

      it('reports the live sessions the principal held before the call', async () => {
        const principalKey = newPrincipal();
        expect(await store.create(sessionRecord({ principalKey }), 5, T0)).toEqual({
          created: true,
          activeCount: 0,
        });
        expect(await store.create(sessionRecord({ principalKey }), 5, T0)).toEqual({
          created: true,
          activeCount: 1,
        });
      });

      it('refuses a session beyond the per-principal cap and stores nothing', async () => {
        const principalKey = newPrincipal();
        await store.create(sessionRecord({ principalKey }), 2, T0);
        await store.create(sessionRecord({ principalKey }), 2, T0);
        const refused = sessionRecord({ principalKey });

        expect(await store.create(refused, 2, T0)).toEqual({ created: false, activeCount: 2 });
        expect(await store.get(refused.id, T0)).toBeUndefined();
        expect(await store.listByPrincipal(principalKey, T0)).toHaveLength(2);
      });

      it('counts only live sessions of the same principal toward the cap', async () => {
        const principalKey = newPrincipal();
        const now = T0 + 20 * MINUTE;
        await createAll([
          sessionRecord({ principalKey, idleExpiresAt: T0 + 10 * MINUTE }),
          sessionRecord({ principalKey, idleExpiresAt: now }),
          sessionRecord({ principalKey, absoluteExpiresAt: T0 + 15 * MINUTE, idleExpiresAt: T0 + HOUR }),
          sessionRecord({ principalKey: newPrincipal() }),
        ]);

        expect(await store.create(sessionRecord({ principalKey, createdAt: now }), 1, now)).toEqual({
          created: true,
          activeCount: 0,
        });
      });

      it('throws ERR_SESSION_CONFLICT for an existing id and keeps the original', async () => {
        const original = sessionRecord();
        await createAll([original]);
        const clash = sessionRecord({ id: original.id, data: { other: true } });

        await expect(store.create(clash, 5, T0)).rejects.toSatisfy((error: unknown) =>
          isGatehouseError(error, 'ERR_SESSION_CONFLICT'),
        );
        expect(await store.get(original.id, T0)).toEqual(original);
      });

      it('throws ERR_SESSION_CONFLICT for an existing id even when the cap is reached', async () => {
        const original = sessionRecord();
        await createAll([original]);
        const clash = sessionRecord({ id: original.id, principalKey: original.principalKey });

        await expect(store.create(clash, 1, T0)).rejects.toSatisfy((error: unknown) =>
          isGatehouseError(error, 'ERR_SESSION_CONFLICT'),
        );
      });

      it('is undefined once idle-expired, live until then', async () => {
        const record = sessionRecord();
        await createAll([record]);

        expect(await store.get(record.id, record.idleExpiresAt - 1)).toEqual(record);
        expect(await store.get(record.id, record.idleExpiresAt)).toBeUndefined();
      });

      it('is undefined once absolutely expired, even before the idle deadline', async () => {
        const record = sessionRecord({ idleExpiresAt: T0 + 2 * HOUR, absoluteExpiresAt: T0 + HOUR });
        await createAll([record]);

        expect(await store.get(record.id, T0 + HOUR - 1)).toEqual(record);
        expect(await store.get(record.id, T0 + HOUR)).toBeUndefined();
      });

      it('hands out copies: mutating input or output never changes the stored record', async () => {
        const data = { nested: { list: [1, 2] } };
        const record = sessionRecord({ data });
        await createAll([record]);
        data.nested.list.push(3);

        const first = await store.get(record.id, T0);
        expect(first?.data).toEqual({ nested: { list: [1, 2] } });
        (first!.data.nested as { list: number[] }).list.push(4);

        const second = await store.get(record.id, T0);
        expect(second?.data).toEqual({ nested: { list: [1, 2] } });
      });
    });

    describe('touch', () => {
      it('moves lastSeenAt and idleExpiresAt and leaves version and data alone', async () => {
        const record = sessionRecord();
        await createAll([record]);
        const now = T0 + 10 * MINUTE;

        const touched = await store.touch(record.id, now, IDLE_MS);

        const expected = { ...record, lastSeenAt: now, idleExpiresAt: now + IDLE_MS };
        expect(touched).toEqual(expected);
        expect(await store.get(record.id, now)).toEqual(expected);
      });

      it('keeps a session alive past its original idle deadline', async () => {
        const record = sessionRecord();
        await createAll([record]);
        await store.touch(record.id, T0 + 20 * MINUTE, IDLE_MS);

        expect(await store.get(record.id, record.idleExpiresAt + 5 * MINUTE)).toBeDefined();
      });

      it('never extends idleExpiresAt beyond absoluteExpiresAt', async () => {
        const record = sessionRecord({ absoluteExpiresAt: T0 + HOUR });
        await createAll([record]);
        const now = T0 + 20 * MINUTE;

        const touched = await store.touch(record.id, now, HOUR);

        expect(touched?.idleExpiresAt).toBe(T0 + HOUR);
        expect(touched?.lastSeenAt).toBe(now);
        expect(await store.get(record.id, T0 + HOUR)).toBeUndefined();
      });

      it('does not bump the version: an update with the pre-touch version still wins', async () => {
        const record = sessionRecord();
        await createAll([record]);
        await store.touch(record.id, T0 + MINUTE, IDLE_MS);

        const updated = await store.update(record.id, 1, { step: 2 });

        expect(updated?.version).toBe(2);
      });

      it('returns undefined for an idle-expired session and does not revive it', async () => {
        const record = sessionRecord();
        await createAll([record]);

        expect(await store.touch(record.id, record.idleExpiresAt, IDLE_MS)).toBeUndefined();
        expect(await store.get(record.id, record.idleExpiresAt)).toBeUndefined();
        expect(await store.get(record.id, T0)).toEqual(record);
      });

      it('returns undefined for an absolutely expired session and does not revive it', async () => {
        const record = sessionRecord({ idleExpiresAt: T0 + 2 * HOUR, absoluteExpiresAt: T0 + HOUR });
        await createAll([record]);

        expect(await store.touch(record.id, T0 + HOUR, IDLE_MS)).toBeUndefined();
        expect(await store.get(record.id, T0)).toEqual(record);
      });

      it('returns undefined for an unknown id', async () => {
        expect(await store.touch('sess-unknown', T0, IDLE_MS)).toBeUndefined();
      });
    });

    describe('update (compare-and-swap)', () => {
      it('replaces data and increments the version when the version matches', async () => {
        const record = sessionRecord({ data: { a: 1, b: 2 } });
        await createAll([record]);

        const second = await store.update(record.id, 1, { c: 3 });
        expect(second).toEqual({ ...record, version: 2, data: { c: 3 } });
        expect(await store.get(record.id, T0)).toEqual(second);

        const third = await store.update(record.id, 2, { c: 4 });
        expect(third).toEqual({ ...record, version: 3, data: { c: 4 } });
      });

      it('returns undefined for a stale or future version and leaves the record unchanged', async () => {
        const record = sessionRecord({ data: { step: 1 } });
        await createAll([record]);
        const current = await store.update(record.id, 1, { step: 2 });

        expect(await store.update(record.id, 1, { step: 'stale' })).toBeUndefined();
        expect(await store.update(record.id, 3, { step: 'future' })).toBeUndefined();
        expect(await store.get(record.id, T0)).toEqual(current);
      });

      it('returns undefined for an unknown id', async () => {
        expect(await store.update('sess-unknown', 1, { step: 2 })).toBeUndefined();
      });
    });

    describe('delete', () => {
      it('is true once, then false', async () => {
        const record = sessionRecord();
        await createAll([record]);

        expect(await store.delete(record.id)).toBe(true);
        expect(await store.delete(record.id)).toBe(false);
        expect(await store.get(record.id, T0)).toBeUndefined();
      });

      it('is false for an unknown id', async () => {
        expect(await store.delete('sess-unknown')).toBe(false);
      });

      it('removes the session from its principal and frees its slot under the cap', async () => {
        const principalKey = newPrincipal();
        const first = sessionRecord({ principalKey });
        await store.create(first, 1, T0);
        const next = sessionRecord({ principalKey });
        expect((await store.create(next, 1, T0)).created).toBe(false);

        await store.delete(first.id);

        expect(await store.listByPrincipal(principalKey, T0)).toEqual([]);
        expect(await store.create(next, 1, T0)).toEqual({ created: true, activeCount: 0 });
      });
    });

    describe('listByPrincipal', () => {
      it("returns only that principal's live sessions, oldest first", async () => {
        const principalKey = newPrincipal();
        const now = T0 + 10 * MINUTE;
        // Ids sort and insertion order both run against creation order, so only createdAt can order these.
        const oldest = sessionRecord({ principalKey, id: `sess-c-${randomUUID()}`, createdAt: T0 });
        const middle = sessionRecord({
          principalKey,
          id: `sess-a-${randomUUID()}`,
          createdAt: T0 + MINUTE,
          kind: 'websocket',
        });
        const newest = sessionRecord({
          principalKey,
          id: `sess-b-${randomUUID()}`,
          createdAt: T0 + 2 * MINUTE,
        });
        await createAll([
          newest,
          sessionRecord({ principalKey, createdAt: T0 - HOUR, idleExpiresAt: T0 + 5 * MINUTE }),
          oldest,
          sessionRecord({ principalKey, createdAt: T0 - 9 * HOUR, idleExpiresAt: now + HOUR }),
          sessionRecord({ principalKey, createdAt: T0 - HOUR, idleExpiresAt: now }),
          middle,
          sessionRecord({ createdAt: T0 - MINUTE }),
        ]);

        expect(await store.listByPrincipal(principalKey, now)).toEqual([oldest, middle, newest]);
      });

      it('returns an empty list for an unknown principal', async () => {
        await createAll([sessionRecord()]);
        expect(await store.listByPrincipal(newPrincipal(), T0)).toEqual([]);
      });
    });

    describe('deleteExpired', () => {
      it('removes and returns exactly the expired sessions and leaves live ones', async () => {
        const now = T0 + 25 * MINUTE;
        const idleExpired = sessionRecord({ idleExpiresAt: T0 + 10 * MINUTE });
        const idleDeadlineNow = sessionRecord({ idleExpiresAt: now });
        const absoluteExpired = sessionRecord({
          idleExpiresAt: T0 + HOUR,
          absoluteExpiresAt: T0 + 20 * MINUTE,
        });
        const live = sessionRecord();
        const liveByOneMs = sessionRecord({ idleExpiresAt: now + 1 });
        await createAll([idleExpired, live, idleDeadlineNow, liveByOneMs, absoluteExpired]);

        const removed = await store.deleteExpired(now, 100);

        expect(byId(removed)).toEqual(byId([idleExpired, idleDeadlineNow, absoluteExpired]));
        expect(await store.get(live.id, now)).toEqual(live);
        expect(await store.get(liveByOneMs.id, now)).toEqual(liveByOneMs);
        expect(await store.get(idleExpired.id, T0)).toBeUndefined();
        expect(await store.deleteExpired(now, 100)).toEqual([]);
      });

      it('removes at most `limit` per call, never the same session twice', async () => {
        const now = T0 + HOUR;
        const expired = Array.from({ length: 5 }, () => sessionRecord({ idleExpiresAt: T0 + MINUTE }));
        const live = sessionRecord({ createdAt: now });
        await createAll([...expired, live]);

        const batches = [
          await store.deleteExpired(now, 2),
          await store.deleteExpired(now, 2),
          await store.deleteExpired(now, 2),
          await store.deleteExpired(now, 2),
        ];

        expect(batches.map((batch) => batch.length)).toEqual([2, 2, 1, 0]);
        expect(sortedIds(batches.flat())).toEqual(sortedIds(expired));
        expect(await store.get(live.id, now)).toEqual(live);
      });

      it('removes nothing when limit is 0 or negative', async () => {
        const now = T0 + HOUR;
        const expired = [sessionRecord({ idleExpiresAt: T0 + MINUTE }), sessionRecord({ idleExpiresAt: T0 })];
        await createAll(expired);

        expect(await store.deleteExpired(now, 0)).toEqual([]);
        // SQL reads a negative LIMIT as "no limit"; the port reads it as "nothing".
        expect(await store.deleteExpired(now, -1)).toEqual([]);
        expect(sortedIds(await store.deleteExpired(now, 10))).toEqual(sortedIds(expired));
      });

      it('removes nothing when nothing has expired', async () => {
        const live = sessionRecord();
        await createAll([live]);

        expect(await store.deleteExpired(T0, 10)).toEqual([]);
        expect(await store.get(live.id, T0)).toEqual(live);
      });
    });

    describe('races', () => {
      it('admits exactly the cap when 20 creates for one principal run concurrently', async () => {
        const pool = await racers();
        const principalKey = newPrincipal();
        const candidates = Array.from({ length: 20 }, () => sessionRecord({ principalKey }));

        const results = await Promise.all(
          candidates.map((record, i) => pool[i % pool.length]!.create(record, 3, T0)),
        );

        const admitted = candidates.filter((_, i) => results[i]?.created);
        expect(admitted).toHaveLength(3);
        expect(
          results
            .filter((result) => result.created)
            .map((result) => result.activeCount)
            .sort(),
        ).toEqual([0, 1, 2]);
        for (const result of results.filter((r) => !r.created)) expect(result.activeCount).toBe(3);
        const reader = pool[pool.length - 1]!;
        expect(sortedIds(await reader.listByPrincipal(principalKey, T0))).toEqual(sortedIds(admitted));
      });

      it('lets exactly one of 10 concurrent updates with the same expected version win', async () => {
        const pool = await racers();
        const record = sessionRecord();
        await createAll([record]);

        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => pool[i % pool.length]!.update(record.id, 1, { writer: i })),
        );

        const winners = results.filter((result) => result !== undefined);
        expect(winners).toHaveLength(1);
        expect(winners[0]?.version).toBe(2);
        expect(await store.get(record.id, T0)).toEqual(winners[0]);
      });

      it('reports true to exactly one of 10 concurrent deletes', async () => {
        const pool = await racers();
        const record = sessionRecord();
        await createAll([record]);

        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => pool[i % pool.length]!.delete(record.id)),
        );

        expect(results.filter((deleted) => deleted)).toHaveLength(1);
      });

      it('never hands the same session to two concurrent sweepers', async () => {
        const pool = await racers();
        const now = T0 + HOUR;
        const expired = Array.from({ length: 50 }, () => sessionRecord({ idleExpiresAt: T0 + MINUTE }));
        const live = sessionRecord({ createdAt: now });
        await createAll([...expired, live]);

        const [first, second] = await Promise.all([
          pool[0]!.deleteExpired(now, 100),
          pool[1 % pool.length]!.deleteExpired(now, 100),
        ]);

        const firstIds = new Set(ids(first ?? []));
        expect(ids(second ?? []).filter((id) => firstIds.has(id))).toEqual([]);
        expect(sortedIds([...(first ?? []), ...(second ?? [])])).toEqual(sortedIds(expired));
        expect(await store.deleteExpired(now, 100)).toEqual([]);
        expect(await store.get(live.id, now)).toEqual(live);
      });
    });

    if (options.durable) {
      it('keeps sessions across close and reopen', async () => {
        if (harness.reopen === undefined) throw new Error(`${name}: durable needs harness.reopen`);
        const record = sessionRecord({ data: { protocolVersion: '2025-06-18', step: 1 } });
        await createAll([record]);
        const touched = await store.touch(record.id, T0 + MINUTE, IDLE_MS);
        const updated = await store.update(record.id, 1, { protocolVersion: '2025-06-18', step: 2 });
        expect(touched).toBeDefined();

        const reopened = (await harness.reopen()).sessions;

        expect(await reopened.get(record.id, T0 + MINUTE)).toEqual(updated);
        expect(await reopened.listByPrincipal(record.principalKey, T0 + MINUTE)).toEqual([updated]);
      });
    }
  });
}
