import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isGatehouseError } from '../../src/errors/gatehouse-error.js';
import type { SessionKind, SessionRecord, SessionStore } from '../../src/stores/ports.js';
import { compareIds, readAllPages, type StoreContractOptions, type StoresHarness } from './harness.js';

/** The harness and options every store contract shares (see `harness.ts`). */
export type SessionStoreHarness = StoresHarness;
export type SessionStoreContractOptions = StoreContractOptions;

const T0 = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const IDLE_MS = 30 * MINUTE;
/** The short idle timeout of a session still waiting for its first request after `initialize`. */
const PENDING_IDLE_MS = MINUTE;
const ABSOLUTE_MS = 8 * HOUR;
/** A cap no test reaches, kept finite so every backend can bind it as an integer. */
const NO_CAP = { max: 1_000_000 } as const;
/** The kinds the gateway lets a new session evict; `websocket` is left out so the tests can see it kept. */
const EVICTABLE: readonly SessionKind[] = ['streamable-http', 'legacy-sse'];

function newPrincipal(): string {
  return `https://idp.example.test/#user-${randomUUID()}`;
}

function sessionRecord(overrides: Partial<SessionRecord> = {}): SessionRecord {
  const createdAt = overrides.createdAt ?? T0;
  const lastSeenAt = overrides.lastSeenAt ?? createdAt;
  const idleTimeoutMs = overrides.idleTimeoutMs ?? IDLE_MS;
  return {
    id: `sess-${randomUUID()}`,
    principalKey: newPrincipal(),
    kind: 'streamable-http',
    createdAt,
    lastSeenAt,
    idleTimeoutMs,
    idleExpiresAt: lastSeenAt + idleTimeoutMs,
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

        const result = await store.create(record, { max: 5 }, T0);

        expect(result).toEqual({ created: true, activeCount: 0, evicted: [] });
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
        expect(await store.create(sessionRecord({ principalKey }), { max: 5 }, T0)).toEqual({
          created: true,
          activeCount: 0,
          evicted: [],
        });
        expect(await store.create(sessionRecord({ principalKey }), { max: 5 }, T0)).toEqual({
          created: true,
          activeCount: 1,
          evicted: [],
        });
      });

      it('refuses a session beyond the per-principal cap and stores nothing', async () => {
        const principalKey = newPrincipal();
        await store.create(sessionRecord({ principalKey }), { max: 2 }, T0);
        await store.create(sessionRecord({ principalKey }), { max: 2 }, T0);
        const refused = sessionRecord({ principalKey });

        expect(await store.create(refused, { max: 2 }, T0)).toEqual({ created: false, activeCount: 2 });
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

        expect(await store.create(sessionRecord({ principalKey, createdAt: now }), { max: 1 }, now)).toEqual({
          created: true,
          activeCount: 0,
          evicted: [],
        });
      });

      it('throws ERR_SESSION_CONFLICT for an existing id and keeps the original', async () => {
        const original = sessionRecord();
        await createAll([original]);
        const clash = sessionRecord({ id: original.id, data: { other: true } });

        await expect(store.create(clash, { max: 5 }, T0)).rejects.toSatisfy((error: unknown) =>
          isGatehouseError(error, 'ERR_SESSION_CONFLICT'),
        );
        expect(await store.get(original.id, T0)).toEqual(original);
      });

      it('throws ERR_SESSION_CONFLICT for an existing id even when the cap is reached', async () => {
        const original = sessionRecord();
        await createAll([original]);
        const clash = sessionRecord({ id: original.id, principalKey: original.principalKey });

        await expect(store.create(clash, { max: 1 }, T0)).rejects.toSatisfy((error: unknown) =>
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

    describe('create at the cap, with eviction', () => {
      /** Creates `records` without a cap, then opens `next` for their principal under `limit`. */
      async function atCap(records: readonly SessionRecord[]): Promise<string> {
        await createAll(records);
        return records[0]!.principalKey;
      }

      it('evicts the least recently used evictable session, inserts, and returns what it evicted', async () => {
        const principalKey = newPrincipal();
        const now = T0 + 10 * MINUTE;
        // Created first but used last: recency, not age, decides.
        const oldestButRecent = sessionRecord({ principalKey, createdAt: T0, lastSeenAt: T0 + 9 * MINUTE });
        const leastRecent = sessionRecord({
          principalKey,
          createdAt: T0 + MINUTE,
          lastSeenAt: T0 + 2 * MINUTE,
        });
        const middle = sessionRecord({
          principalKey,
          createdAt: T0 + 2 * MINUTE,
          lastSeenAt: T0 + 5 * MINUTE,
        });
        await atCap([oldestButRecent, leastRecent, middle]);
        const next = sessionRecord({ principalKey, createdAt: now });

        const result = await store.create(next, { max: 3, evictKinds: EVICTABLE }, now);

        expect(result).toEqual({ created: true, activeCount: 3, evicted: [leastRecent] });
        expect(await store.get(leastRecent.id, now)).toBeUndefined();
        expect(sortedIds(await store.listByPrincipal(principalKey, now))).toEqual(
          sortedIds([oldestButRecent, middle, next]),
        );
      });

      it('breaks lastSeenAt ties by createdAt, then by id', async () => {
        const principalKey = newPrincipal();
        const lastSeenAt = T0 + 5 * MINUTE;
        const laterCreated = sessionRecord({
          principalKey,
          createdAt: T0 + MINUTE,
          lastSeenAt,
          id: 'sess-a',
        });
        const idB = sessionRecord({ principalKey, createdAt: T0, lastSeenAt, id: `sess-b-${randomUUID()}` });
        const idC = sessionRecord({ principalKey, createdAt: T0, lastSeenAt, id: `sess-c-${randomUUID()}` });
        await atCap([idC, laterCreated, idB]);
        const now = T0 + 10 * MINUTE;
        const limit = { max: 3, evictKinds: EVICTABLE };

        const first = await store.create(sessionRecord({ principalKey, createdAt: now }), limit, now);
        const second = await store.create(sessionRecord({ principalKey, createdAt: now }), limit, now);
        const third = await store.create(sessionRecord({ principalKey, createdAt: now }), limit, now);

        expect([first, second, third].map((result) => (result.created ? ids(result.evicted) : []))).toEqual([
          [idB.id],
          [idC.id],
          [laterCreated.id],
        ]);
      });

      it('never evicts a kind outside evictKinds, and refuses when only such sessions are live', async () => {
        const principalKey = newPrincipal();
        const socket = sessionRecord({ principalKey, kind: 'websocket', lastSeenAt: T0 });
        const http = sessionRecord({ principalKey, lastSeenAt: T0 + MINUTE });
        await atCap([socket, http]);
        const now = T0 + 10 * MINUTE;

        const evicting = await store.create(
          sessionRecord({ principalKey, createdAt: now }),
          { max: 2, evictKinds: EVICTABLE },
          now,
        );
        expect(evicting).toMatchObject({ created: true, evicted: [http] });

        const refused = sessionRecord({ principalKey, createdAt: now });
        const onlyNewEvictable = await store.create(refused, { max: 2, evictKinds: ['legacy-sse'] }, now);
        expect(onlyNewEvictable).toEqual({ created: false, activeCount: 2 });
        expect(await store.get(refused.id, now)).toBeUndefined();
        expect(await store.get(socket.id, now)).toEqual(socket);
      });

      it('refuses without evictKinds or with an empty list, evicting nothing', async () => {
        const principalKey = newPrincipal();
        const existing = sessionRecord({ principalKey });
        await atCap([existing]);

        expect(await store.create(sessionRecord({ principalKey }), { max: 1 }, T0)).toEqual({
          created: false,
          activeCount: 1,
        });
        expect(await store.create(sessionRecord({ principalKey }), { max: 1, evictKinds: [] }, T0)).toEqual({
          created: false,
          activeCount: 1,
        });
        expect(await store.listByPrincipal(principalKey, T0)).toEqual([existing]);
      });

      it("never evicts another principal's session or an expired one", async () => {
        const principalKey = newPrincipal();
        const now = T0 + 20 * MINUTE;
        const othersOldest = sessionRecord({ createdAt: T0 - HOUR, idleTimeoutMs: 2 * HOUR });
        const expired = sessionRecord({ principalKey, idleExpiresAt: T0 + 10 * MINUTE });
        const live = sessionRecord({ principalKey, lastSeenAt: T0 + 5 * MINUTE });
        await createAll([othersOldest, expired, live]);

        const result = await store.create(
          sessionRecord({ principalKey, createdAt: now }),
          { max: 1, evictKinds: EVICTABLE },
          now,
        );

        expect(result).toEqual({ created: true, activeCount: 1, evicted: [live] });
        expect(await store.get(othersOldest.id, now)).toEqual(othersOldest);
        expect(await store.get(expired.id, T0)).toEqual(expired);
      });

      it('evicts as many as it takes to get below a lowered cap', async () => {
        const principalKey = newPrincipal();
        const sessions = [0, 1, 2, 3].map((i) =>
          sessionRecord({ principalKey, lastSeenAt: T0 + i * MINUTE, createdAt: T0 }),
        );
        await atCap(sessions);
        const now = T0 + 10 * MINUTE;
        const next = sessionRecord({ principalKey, createdAt: now });

        const result = await store.create(next, { max: 2, evictKinds: EVICTABLE }, now);

        expect(result).toEqual({ created: true, activeCount: 4, evicted: sessions.slice(0, 3) });
        expect(sortedIds(await store.listByPrincipal(principalKey, now))).toEqual(
          sortedIds([sessions[3]!, next]),
        );
      });

      it('evicts nothing and refuses when evicting every evictable session would not make room', async () => {
        const principalKey = newPrincipal();
        const socket = sessionRecord({ principalKey, kind: 'websocket' });
        const otherSocket = sessionRecord({ principalKey, kind: 'websocket' });
        const http = sessionRecord({ principalKey });
        await atCap([socket, otherSocket, http]);

        const result = await store.create(
          sessionRecord({ principalKey }),
          { max: 2, evictKinds: EVICTABLE },
          T0,
        );

        expect(result).toEqual({ created: false, activeCount: 3 });
        expect(await store.get(http.id, T0)).toEqual(http);
      });

      it('throws ERR_SESSION_CONFLICT for an existing id before evicting anything', async () => {
        const original = sessionRecord();
        await atCap([original]);
        const clash = sessionRecord({ id: original.id, principalKey: original.principalKey });

        await expect(store.create(clash, { max: 1, evictKinds: EVICTABLE }, T0)).rejects.toSatisfy(
          (error: unknown) => isGatehouseError(error, 'ERR_SESSION_CONFLICT'),
        );
        expect(await store.get(original.id, T0)).toEqual(original);
      });

      it('evicts nothing below the cap', async () => {
        const principalKey = newPrincipal();
        const existing = sessionRecord({ principalKey });
        await atCap([existing]);

        expect(
          await store.create(sessionRecord({ principalKey }), { max: 2, evictKinds: EVICTABLE }, T0),
        ).toEqual({ created: true, activeCount: 1, evicted: [] });
        expect(await store.get(existing.id, T0)).toEqual(existing);
      });
    });

    describe('touch', () => {
      it('moves lastSeenAt and idleExpiresAt and leaves version and data alone', async () => {
        const record = sessionRecord();
        await createAll([record]);
        const now = T0 + 10 * MINUTE;

        const touched = await store.touch(record.id, record.principalKey, now);

        const expected = { ...record, lastSeenAt: now, idleExpiresAt: now + IDLE_MS };
        expect(touched).toEqual(expected);
        expect(await store.get(record.id, now)).toEqual(expected);
      });

      it('keeps a session alive past its original idle deadline', async () => {
        const record = sessionRecord();
        await createAll([record]);
        await store.touch(record.id, record.principalKey, T0 + 20 * MINUTE);

        expect(await store.get(record.id, record.idleExpiresAt + 5 * MINUTE)).toBeDefined();
      });

      it('never extends idleExpiresAt beyond absoluteExpiresAt', async () => {
        const record = sessionRecord({ absoluteExpiresAt: T0 + HOUR });
        await createAll([record]);
        const now = T0 + 20 * MINUTE;

        const touched = await store.touch(record.id, record.principalKey, now, HOUR);

        expect(touched?.idleExpiresAt).toBe(T0 + HOUR);
        expect(touched?.lastSeenAt).toBe(now);
        expect(await store.get(record.id, T0 + HOUR)).toBeUndefined();
      });

      it('does not bump the version: an update with the pre-touch version still wins', async () => {
        const record = sessionRecord();
        await createAll([record]);
        await store.touch(record.id, record.principalKey, T0 + MINUTE);

        const updated = await store.update(record.id, 1, { step: 2 });

        expect(updated?.version).toBe(2);
      });

      it('returns undefined for an idle-expired session and does not revive it', async () => {
        const record = sessionRecord();
        await createAll([record]);

        expect(await store.touch(record.id, record.principalKey, record.idleExpiresAt)).toBeUndefined();
        expect(await store.get(record.id, record.idleExpiresAt)).toBeUndefined();
        expect(await store.get(record.id, T0)).toEqual(record);
      });

      it('returns undefined for an absolutely expired session and does not revive it', async () => {
        const record = sessionRecord({ idleExpiresAt: T0 + 2 * HOUR, absoluteExpiresAt: T0 + HOUR });
        await createAll([record]);

        expect(await store.touch(record.id, record.principalKey, T0 + HOUR)).toBeUndefined();
        expect(await store.get(record.id, T0)).toEqual(record);
      });

      it("uses the session's own idle timeout when none is given", async () => {
        const record = sessionRecord({ idleTimeoutMs: PENDING_IDLE_MS });
        await createAll([record]);
        const now = T0 + 30_000;

        const touched = await store.touch(record.id, record.principalKey, now);

        expect(touched).toEqual({ ...record, lastSeenAt: now, idleExpiresAt: now + PENDING_IDLE_MS });
      });

      it('establishes a session: a given idle timeout is applied and stored for later touches', async () => {
        const record = sessionRecord({ idleTimeoutMs: PENDING_IDLE_MS });
        await createAll([record]);
        const established = T0 + 30_000;
        const later = T0 + 20 * MINUTE;

        const touched = await store.touch(record.id, record.principalKey, established, IDLE_MS);
        const next = await store.touch(record.id, record.principalKey, later);

        expect(touched).toEqual({
          ...record,
          lastSeenAt: established,
          idleTimeoutMs: IDLE_MS,
          idleExpiresAt: established + IDLE_MS,
        });
        expect(next).toEqual({
          ...record,
          lastSeenAt: later,
          idleTimeoutMs: IDLE_MS,
          idleExpiresAt: later + IDLE_MS,
        });
        expect(await store.get(record.id, later)).toEqual(next);
      });

      it("returns undefined for another principal's session and changes nothing", async () => {
        const record = sessionRecord({ idleTimeoutMs: PENDING_IDLE_MS });
        await createAll([record]);
        const now = T0 + 30_000;

        expect(await store.touch(record.id, newPrincipal(), now)).toBeUndefined();
        expect(await store.touch(record.id, newPrincipal(), now, IDLE_MS)).toBeUndefined();

        expect(await store.get(record.id, T0)).toEqual(record);
        // The victim's pending session still ends on its own short deadline.
        expect(await store.get(record.id, T0 + PENDING_IDLE_MS)).toBeUndefined();
      });

      it('returns undefined for an unknown id', async () => {
        expect(await store.touch('sess-unknown', newPrincipal(), T0)).toBeUndefined();
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
        await store.create(first, { max: 1 }, T0);
        const next = sessionRecord({ principalKey });
        expect((await store.create(next, { max: 1 }, T0)).created).toBe(false);

        await store.delete(first.id);

        expect(await store.listByPrincipal(principalKey, T0)).toEqual([]);
        expect(await store.create(next, { max: 1 }, T0)).toEqual({
          created: true,
          activeCount: 0,
          evicted: [],
        });
      });
    });

    describe('deleteOwned', () => {
      it('deletes and returns the record for its owner, once', async () => {
        const record = sessionRecord();
        await createAll([record]);

        expect(await store.deleteOwned(record.id, record.principalKey)).toEqual(record);
        expect(await store.deleteOwned(record.id, record.principalKey)).toBeUndefined();
        expect(await store.get(record.id, T0)).toBeUndefined();
      });

      it("returns undefined for another principal's session and leaves it alone", async () => {
        const record = sessionRecord();
        await createAll([record]);

        expect(await store.deleteOwned(record.id, newPrincipal())).toBeUndefined();

        expect(await store.get(record.id, T0)).toEqual(record);
      });

      it('returns undefined for an unknown id', async () => {
        expect(await store.deleteOwned('sess-unknown', newPrincipal())).toBeUndefined();
      });

      it('deletes and returns an expired session too, whose upstream still needs reaping', async () => {
        const record = sessionRecord({ idleExpiresAt: T0 + MINUTE });
        await createAll([record]);

        expect(await store.deleteOwned(record.id, record.principalKey)).toEqual(record);
        expect(await store.deleteExpired(T0 + HOUR, 10)).toEqual([]);
      });

      it('frees the slot under the cap', async () => {
        const principalKey = newPrincipal();
        const first = sessionRecord({ principalKey });
        await createAll([first]);

        await store.deleteOwned(first.id, principalKey);

        expect(await store.create(sessionRecord({ principalKey }), { max: 1 }, T0)).toMatchObject({
          created: true,
          activeCount: 0,
        });
      });
    });

    describe('deleteByPrincipal', () => {
      it('deletes every session of the principal, expired ones too, and returns them oldest first', async () => {
        const principalKey = newPrincipal();
        const other = sessionRecord();
        const newest = sessionRecord({
          principalKey,
          createdAt: T0 + 2 * MINUTE,
          id: `sess-a-${randomUUID()}`,
        });
        const expired = sessionRecord({ principalKey, createdAt: T0 - HOUR, idleExpiresAt: T0 });
        const middle = sessionRecord({ principalKey, createdAt: T0 + MINUTE, kind: 'websocket' });
        await createAll([newest, other, expired, middle]);

        const removed = await store.deleteByPrincipal(principalKey);

        expect(removed).toEqual([expired, middle, newest]);
        expect(await store.listByPrincipal(principalKey, T0)).toEqual([]);
        expect(await store.get(expired.id, T0 - HOUR)).toBeUndefined();
        expect(await store.get(other.id, T0)).toEqual(other);
        expect(await store.deleteByPrincipal(principalKey)).toEqual([]);
      });

      it('returns an empty list for an unknown principal', async () => {
        await createAll([sessionRecord()]);
        expect(await store.deleteByPrincipal(newPrincipal())).toEqual([]);
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

    describe('list', () => {
      /** Live and expired sessions of several principals, with ties on createdAt that only the id orders. */
      async function mixedSessions(now: number): Promise<SessionRecord[]> {
        const principals = [newPrincipal(), newPrincipal(), newPrincipal()];
        const live = Array.from({ length: 11 }, (_, i) =>
          sessionRecord({
            principalKey: principals[i % 3] as string,
            // Ids run against creation order; four pairs share one createdAt.
            id: `sess-${String(20 - i).padStart(2, '0')}-${randomUUID()}`,
            createdAt: T0 + Math.floor(i / 2) * MINUTE,
            kind: i % 4 === 0 ? 'websocket' : 'streamable-http',
          }),
        );
        const expired = [
          sessionRecord({ createdAt: T0 + MINUTE, idleExpiresAt: now }),
          sessionRecord({ createdAt: T0 - 9 * HOUR, idleExpiresAt: now + HOUR }),
        ];
        await createAll([...live.slice(5), ...expired, ...live.slice(0, 5)]);
        return live.sort((a, b) => a.createdAt - b.createdAt || compareIds(a.id, b.id));
      }

      it("returns every principal's live sessions oldest first by (createdAt, id), at most limit", async () => {
        const now = T0 + 20 * MINUTE;
        const live = await mixedSessions(now);

        expect(await store.list(now, { limit: 100 })).toEqual(live);
        expect(await store.list(now, { limit: 4 })).toEqual(live.slice(0, 4));
      });

      it('pages through every live session without a duplicate or a gap', async () => {
        const now = T0 + 20 * MINUTE;
        const live = await mixedSessions(now);

        for (const limit of [1, 2, 3, 5]) {
          const { records, pages } = await readAllPages(
            (page) => store.list(now, page),
            (s) => s.id,
            limit,
          );
          expect(ids(records)).toEqual(ids(live));
          expect(pages).toBe(Math.ceil(live.length / limit));
        }
      });

      it('resumes after a cursor whose session is gone', async () => {
        const now = T0 + 20 * MINUTE;
        const live = await mixedSessions(now);
        const cursor = live[3] as SessionRecord;
        await store.delete(cursor.id);

        const next = await store.list(now, {
          limit: 3,
          after: { createdAt: cursor.createdAt, id: cursor.id },
        });

        expect(next).toEqual(live.slice(4, 7));
      });

      it('returns an empty list when nothing is live', async () => {
        expect(await store.list(T0, { limit: 10 })).toEqual([]);
        await createAll([sessionRecord({ idleExpiresAt: T0 + MINUTE })]);
        expect(await store.list(T0 + MINUTE, { limit: 10 })).toEqual([]);
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
          candidates.map((record, i) => pool[i % pool.length]!.create(record, { max: 3 }, T0)),
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
      it('leaves at most the cap and returns each evicted session once when 20 evicting creates race', async () => {
        const pool = await racers();
        const principalKey = newPrincipal();
        const cap = 3;
        const existing = Array.from({ length: cap }, (_, i) =>
          sessionRecord({ principalKey, lastSeenAt: T0 + i }),
        );
        await createAll(existing);
        const now = T0 + MINUTE;
        const candidates = Array.from({ length: 20 }, () => sessionRecord({ principalKey, createdAt: now }));

        const results = await Promise.all(
          candidates.map((record, i) =>
            pool[i % pool.length]!.create(record, { max: cap, evictKinds: EVICTABLE }, now),
          ),
        );

        const live = await store.listByPrincipal(principalKey, now);
        expect(live.length).toBeLessThanOrEqual(cap);
        const created = candidates.filter((_, i) => results[i]?.created);
        const evicted = results.flatMap((result) => (result.created ? ids(result.evicted) : []));
        expect(new Set(evicted).size).toBe(evicted.length);
        // Everything that was ever live is now either still live or was handed to exactly one creator.
        expect([...evicted, ...ids(live)].sort()).toEqual(sortedIds([...existing, ...created]));
      });

      it("never lets another principal's concurrent touches move the session's deadlines", async () => {
        const pool = await racers();
        const record = sessionRecord({ idleTimeoutMs: PENDING_IDLE_MS });
        await createAll([record]);
        const ownerAt = T0 + 10_000;

        const results = await Promise.all([
          pool[0]!.touch(record.id, record.principalKey, ownerAt),
          ...Array.from({ length: 10 }, (_, i) =>
            pool[(i + 1) % pool.length]!.touch(record.id, newPrincipal(), ownerAt + 1 + i, IDLE_MS),
          ),
        ]);

        const [owner, ...intruders] = results;
        expect(intruders.every((result) => result === undefined)).toBe(true);
        const expected = { ...record, lastSeenAt: ownerAt, idleExpiresAt: ownerAt + PENDING_IDLE_MS };
        expect(owner).toEqual(expected);
        expect(await store.get(record.id, ownerAt)).toEqual(expected);
      });

      it("gives the record to exactly one of the owner's concurrent deleteOwned calls, never to another user's", async () => {
        const pool = await racers();
        const record = sessionRecord();
        await createAll([record]);

        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            pool[i % pool.length]!.deleteOwned(record.id, i % 3 === 0 ? newPrincipal() : record.principalKey),
          ),
        );

        const owners = results.filter((_, i) => i % 3 !== 0);
        const intruders = results.filter((_, i) => i % 3 === 0);
        expect(owners.filter((result) => result !== undefined)).toEqual([record]);
        expect(intruders.every((result) => result === undefined)).toBe(true);
      });

      it('never hands one session to two concurrent deleteByPrincipal calls', async () => {
        const pool = await racers();
        const principalKey = newPrincipal();
        const sessions = Array.from({ length: 20 }, (_, i) =>
          sessionRecord({ principalKey, createdAt: T0 + i }),
        );
        await createAll(sessions);

        const batches = await Promise.all(
          Array.from({ length: 4 }, (_, i) => pool[i % pool.length]!.deleteByPrincipal(principalKey)),
        );

        expect(sortedIds(batches.flat())).toEqual(sortedIds(sessions));
      });
    });

    if (options.durable) {
      it('keeps sessions across close and reopen', async () => {
        if (harness.reopen === undefined) throw new Error(`${name}: durable needs harness.reopen`);
        const record = sessionRecord({ data: { protocolVersion: '2025-06-18', step: 1 } });
        await createAll([record]);
        const touched = await store.touch(record.id, record.principalKey, T0 + MINUTE, 2 * IDLE_MS);
        const updated = await store.update(record.id, 1, { protocolVersion: '2025-06-18', step: 2 });
        expect(touched?.idleTimeoutMs).toBe(2 * IDLE_MS);

        const reopened = (await harness.reopen()).sessions;

        expect(await reopened.get(record.id, T0 + MINUTE)).toEqual(updated);
        expect(updated?.idleTimeoutMs).toBe(2 * IDLE_MS);
        expect(await reopened.listByPrincipal(record.principalKey, T0 + MINUTE)).toEqual([updated]);
      });
    }
  });
}
