import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AuditEntry, AuditQuery } from '../../src/stores/ports.js';
import {
  DAY,
  HOUR,
  MINUTE,
  present,
  racer,
  type StoreContractOptions,
  type StoresHarness,
  T0,
  useContractHarness,
} from './harness.js';

/** An id as writers make them: `at` as 13 zero-padded digits, `-`, random base64url. */
function auditId(at: number): string {
  return `${String(at).padStart(13, '0')}-${randomBytes(9).toString('base64url')}`;
}

/** A sign-in entry with every optional field set. */
function auditEntry(overrides: Partial<AuditEntry> = {}): AuditEntry {
  const at = overrides.at ?? T0;
  const subject = overrides.subject ?? 'usr_alice';
  return {
    id: auditId(at),
    at,
    type: 'login',
    outcome: 'success',
    subject,
    principal: `local#${subject}`,
    clientId: 'client-1',
    requestId: 'req-1',
    ip: '192.0.2.7',
    event: { type: 'login', outcome: 'success', subject, method: 'password', detail: { n: 1, x: null } },
    ...overrides,
  };
}

/** An entry with no optional field. */
function bareEntry(at: number, type = 'keys.rotated'): AuditEntry {
  return { id: auditId(at), at, type, event: { type } };
}

/** The log's ascending order: `at`, then `id` (ids are ASCII here, so code-unit order is byte order). */
function ascending(entries: readonly AuditEntry[]): AuditEntry[] {
  return entries.slice().sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function ids(entries: readonly AuditEntry[]): string[] {
  return entries.map((entry) => entry.id);
}

const ALL: Pick<AuditQuery, 'order' | 'limit'> = { order: 'asc', limit: 1000 };

/**
 * Registers the `AuditStore` contract (see `src/stores/ports.ts`) for one adapter: idempotent appends, every
 * filter alone and combined, both orders, the follow cursor, the limit cap and retention.
 *
 * @example
 * ```ts
 * describeAuditStoreContract('memory', memoryHarness);
 * ```
 */
export function describeAuditStoreContract(
  name: string,
  makeStores: () => Promise<StoresHarness>,
  options: StoreContractOptions = {},
): void {
  describe(`AuditStore contract: ${name}`, () => {
    const ctx = useContractHarness(name, makeStores, options);

    /**
     * A small log over two days: two subjects, several types (a prefix family among them, and types that
     * only look like its members), entries sharing one `at`, and one entry without a subject.
     */
    function sampleLog(): AuditEntry[] {
      return [
        auditEntry({ at: T0, type: 'login', subject: 'usr_alice' }),
        auditEntry({ at: T0 + MINUTE, type: 'oauth.token.issued', subject: 'usr_alice' }),
        auditEntry({ at: T0 + MINUTE, type: 'oauth.token.refreshed', subject: 'usr_bob' }),
        auditEntry({ at: T0 + MINUTE, type: 'oauth.token.issued', subject: 'usr_bob' }),
        auditEntry({ at: T0 + HOUR, type: 'oauth.tokens.listed', subject: 'usr_alice' }),
        auditEntry({ at: T0 + HOUR, type: 'oauth.token', subject: 'usr_alice' }),
        auditEntry({
          at: T0 + 2 * HOUR,
          type: 'oauth.token.revoked',
          subject: 'usr_alice',
          outcome: 'failure',
        }),
        bareEntry(T0 + 3 * HOUR, 'oauth.token.reuse-detected'),
        auditEntry({ at: T0 + DAY, type: 'login', subject: 'usr_bob', outcome: 'failure' }),
        auditEntry({ at: T0 + DAY + MINUTE, type: 'session.ended', subject: 'usr_alice' }),
      ];
    }

    async function stored(query: Partial<AuditQuery> = {}): Promise<AuditEntry[]> {
      return ctx.stores.audit.query({ ...ALL, ...query });
    }

    describe('append', () => {
      it('round-trips every field, the event included', async () => {
        const entry = auditEntry();

        await ctx.stores.audit.append([entry]);

        expect(await stored()).toStrictEqual([entry]);
      });

      it('keeps absent optional fields absent, not null', async () => {
        const entry = bareEntry(T0);
        await ctx.stores.audit.append([entry]);

        const [read] = await stored();

        expect(read).toStrictEqual(entry);
        for (const field of ['outcome', 'subject', 'principal', 'clientId', 'requestId', 'ip']) {
          expect(read).not.toHaveProperty(field);
        }
      });

      it('accepts an empty batch', async () => {
        await ctx.stores.audit.append([]);
        expect(await stored()).toEqual([]);
      });

      it('skips an entry whose id is stored already, within a batch and across batches: the first stands', async () => {
        const first = auditEntry({ type: 'login' });
        const other = auditEntry({ at: T0 + 1 });
        await ctx.stores.audit.append([first, { ...first, type: 'impostor', event: { type: 'impostor' } }]);

        await ctx.stores.audit.append([
          { ...first, at: T0 + 5, type: 'impostor', subject: 'usr_mallory', event: {} },
          other,
        ]);

        expect(await stored()).toStrictEqual([first, other]);
        expect(await stored({ subject: 'usr_mallory' })).toEqual([]);
        expect(await stored({ type: 'impostor' })).toEqual([]);
      });

      it('stores the entries of concurrent appends exactly once each, whichever connection wrote them', async () => {
        const pool = await ctx.racers();
        const entries = Array.from({ length: 40 }, (_, i) =>
          auditEntry({ at: T0 + (i % 7) * MINUTE, subject: `usr_${i % 3}`, type: `t.${i % 4}` }),
        );
        // Overlapping batches: every entry is appended by two or three of the concurrent calls.
        const batches = Array.from({ length: 10 }, (_, i) =>
          entries.slice((i * 4) % 40, ((i * 4) % 40) + 12),
        );

        await Promise.all(batches.map((batch, i) => racer(pool, i).audit.append(batch)));

        expect(await stored()).toStrictEqual(ascending(entries));
        expect(ids(await stored({ subject: 'usr_1' }))).toEqual(
          ids(ascending(entries.filter((entry) => entry.subject === 'usr_1'))),
        );
      });

      it('hands out copies: mutating input or output never changes the stored entry', async () => {
        const event = { type: 'login', list: [1] };
        const entry = auditEntry({ event });
        await ctx.stores.audit.append([entry]);
        event.list.push(2);

        const [first] = await stored();
        (present(first).event.list as number[]).push(3);

        const [second] = await stored();
        expect(second?.event).toEqual({ type: 'login', list: [1] });
      });
    });

    describe('query', () => {
      it('returns the log oldest first by (at, id) for asc, newest first for desc', async () => {
        const log = sampleLog();
        // Appended out of order, in several batches.
        await ctx.stores.audit.append(log.slice(5));
        await ctx.stores.audit.append(log.slice(0, 5).reverse());

        expect(await stored({ order: 'asc' })).toStrictEqual(ascending(log));
        expect(await stored({ order: 'desc' })).toStrictEqual(ascending(log).reverse());
      });

      it('filters by subject', async () => {
        const log = sampleLog();
        await ctx.stores.audit.append(log);

        const bob = await stored({ subject: 'usr_bob' });

        expect(bob).toStrictEqual(ascending(log.filter((entry) => entry.subject === 'usr_bob')));
        expect(bob).toHaveLength(3);
        expect(await stored({ subject: 'usr_nobody' })).toEqual([]);
      });

      it('filters by exact type: no other type starting with it', async () => {
        const log = sampleLog();
        await ctx.stores.audit.append(log);

        expect(ids(await stored({ type: 'login' }))).toEqual(
          ids(ascending(log.filter((e) => e.type === 'login'))),
        );
        expect(ids(await stored({ type: 'oauth.token' }))).toEqual([log[5]?.id]);
        expect(await stored({ type: 'oauth' })).toEqual([]);
      });

      it('filters by a type prefix ending in "." : every type under it and nothing that only looks alike', async () => {
        const log = sampleLog();
        await ctx.stores.audit.append(log);

        const tokens = await stored({ type: 'oauth.token.' });

        expect(tokens.map((entry) => entry.type).sort()).toEqual([
          'oauth.token.issued',
          'oauth.token.issued',
          'oauth.token.refreshed',
          'oauth.token.reuse-detected',
          'oauth.token.revoked',
        ]);
        expect(ids(tokens)).toEqual(ids(ascending(log.filter((e) => e.type.startsWith('oauth.token.')))));
        expect((await stored({ type: 'oauth.' })).length).toBe(7);
      });

      it('reads since as inclusive and until as exclusive', async () => {
        const log = sampleLog();
        await ctx.stores.audit.append(log);

        const window = await stored({ since: T0 + MINUTE, until: T0 + 2 * HOUR });

        expect(ids(window)).toEqual(
          ids(ascending(log.filter((e) => e.at >= T0 + MINUTE && e.at < T0 + 2 * HOUR))),
        );
        expect(window).toHaveLength(5);
        expect(await stored({ since: T0 + DAY + MINUTE + 1 })).toEqual([]);
        expect(await stored({ until: T0 })).toEqual([]);
      });

      it('combines every filter, in both orders', async () => {
        const log = sampleLog();
        await ctx.stores.audit.append(log);
        const sorted = ascending(log);
        const cursor = present(sorted[1]);
        const query = {
          subject: 'usr_alice',
          type: 'oauth.token.',
          since: T0 + MINUTE,
          until: T0 + DAY,
          after: { at: cursor.at, id: cursor.id },
        };
        const expected = sorted.filter(
          (entry) =>
            entry.subject === 'usr_alice' &&
            entry.type.startsWith('oauth.token.') &&
            entry.at >= T0 + MINUTE &&
            entry.at < T0 + DAY &&
            (entry.at > cursor.at || (entry.at === cursor.at && entry.id > cursor.id)),
        );

        const asc = await stored({ ...query, order: 'asc' });
        const desc = await stored({ ...query, order: 'desc' });

        expect(expected.length).toBeGreaterThan(0);
        expect(ids(asc)).toEqual(ids(expected));
        expect(ids(desc)).toEqual(ids(expected).reverse());
      });

      it('returns at most limit entries: the oldest for asc, the newest for desc', async () => {
        const log = sampleLog();
        await ctx.stores.audit.append(log);
        const sorted = ascending(log);

        expect(ids(await stored({ order: 'asc', limit: 3 }))).toEqual(ids(sorted.slice(0, 3)));
        expect(ids(await stored({ order: 'desc', limit: 3 }))).toEqual(ids(sorted.slice(-3).reverse()));
        expect(ids(await stored({ order: 'desc', limit: 2, type: 'login' }))).toEqual(
          ids(sorted.filter((e) => e.type === 'login').reverse()),
        );
      });

      it('caps limit at 1000', async () => {
        const entries = Array.from({ length: 1003 }, (_, i) => bareEntry(T0 + i));
        for (let i = 0; i < entries.length; i += 250)
          await ctx.stores.audit.append(entries.slice(i, i + 250));

        const page = await stored({ limit: 5000 });

        expect(page).toHaveLength(1000);
        expect(ids(page)).toEqual(ids(entries.slice(0, 1000)));
      });

      it('follows the log with after: pages neither skip nor repeat an entry, ties on at included', async () => {
        const entries = Array.from({ length: 23 }, (_, i) =>
          auditEntry({ at: T0 + Math.floor(i / 4) * MINUTE, subject: i % 2 === 0 ? 'usr_even' : 'usr_odd' }),
        );
        await ctx.stores.audit.append(entries);

        const seen: AuditEntry[] = [];
        let after: AuditQuery['after'];
        for (let round = 0; round < 20; round += 1) {
          const page = await stored({ limit: 3, ...(after && { after }) });
          if (page.length === 0) break;
          seen.push(...page);
          const last = present(page[page.length - 1]);
          after = { at: last.at, id: last.id };
        }
        expect(ids(seen)).toEqual(ids(ascending(entries)));

        // What arrives later is found from the last cursor, and only that.
        const late = auditEntry({ at: T0 + HOUR });
        await ctx.stores.audit.append([late]);
        expect(ids(await stored({ limit: 3, ...(after && { after }) }))).toEqual([late.id]);

        // The cursor combines with a filter the same way.
        const odd = ascending(entries.filter((entry) => entry.subject === 'usr_odd'));
        const middle = present(odd[4]);
        expect(ids(await stored({ subject: 'usr_odd', after: { at: middle.at, id: middle.id } }))).toEqual(
          ids(odd.slice(5)),
        );
      });
    });

    describe('deleteBefore', () => {
      it('removes only entries older than before, from every filter, up to limit per call', async () => {
        const log = sampleLog();
        await ctx.stores.audit.append(log);
        const cutoff = T0 + 2 * HOUR;
        const older = log.filter((entry) => entry.at < cutoff);
        const kept = ascending(log.filter((entry) => entry.at >= cutoff));

        expect(await ctx.stores.audit.deleteBefore(cutoff, 4)).toBe(4);
        expect(await stored()).toHaveLength(log.length - 4);
        expect(await ctx.stores.audit.deleteBefore(cutoff, 100)).toBe(older.length - 4);
        expect(await ctx.stores.audit.deleteBefore(cutoff, 100)).toBe(0);

        expect(await stored()).toStrictEqual(kept);
        expect(await stored({ order: 'desc' })).toStrictEqual(kept.slice().reverse());
        expect(ids(await stored({ subject: 'usr_alice' }))).toEqual(
          ids(kept.filter((entry) => entry.subject === 'usr_alice')),
        );
        expect(ids(await stored({ subject: 'usr_bob' }))).toEqual(
          ids(kept.filter((entry) => entry.subject === 'usr_bob')),
        );
        expect(ids(await stored({ type: 'oauth.token.' }))).toEqual(
          ids(kept.filter((entry) => entry.type.startsWith('oauth.token.'))),
        );
        expect(ids(await stored({ type: 'login' }))).toEqual(
          ids(kept.filter((entry) => entry.type === 'login')),
        );
      });

      it('removes the oldest first when limited', async () => {
        const entries = Array.from({ length: 6 }, (_, i) => bareEntry(T0 + i * MINUTE));
        await ctx.stores.audit.append(entries.slice().reverse());

        expect(await ctx.stores.audit.deleteBefore(T0 + HOUR, 2)).toBe(2);

        expect(ids(await stored())).toEqual(ids(entries.slice(2)));
      });

      it('removes nothing for a limit of zero or less', async () => {
        await ctx.stores.audit.append([bareEntry(T0)]);

        expect(await ctx.stores.audit.deleteBefore(T0 + HOUR, 0)).toBe(0);
        expect(await ctx.stores.audit.deleteBefore(T0 + HOUR, -1)).toBe(0);
        expect(await stored()).toHaveLength(1);
      });

      it('lets a removed id be appended again', async () => {
        const entry = auditEntry({ at: T0 });
        await ctx.stores.audit.append([entry]);
        await ctx.stores.audit.deleteBefore(T0 + 1, 10);

        await ctx.stores.audit.append([entry]);

        expect(await stored({ subject: entry.subject })).toStrictEqual([entry]);
      });
    });

    if (options.durable) {
      it('keeps the log across close and reopen', async () => {
        const log = sampleLog();
        await ctx.stores.audit.append(log);

        const reopened = await ctx.reopen();

        expect(await reopened.audit.query({ ...ALL })).toStrictEqual(ascending(log));
        expect(ids(await reopened.audit.query({ ...ALL, subject: 'usr_bob' }))).toEqual(
          ids(ascending(log.filter((entry) => entry.subject === 'usr_bob'))),
        );
      });
    }
  });
}
