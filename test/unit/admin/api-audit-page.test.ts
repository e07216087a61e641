import { describe, expect, it } from 'vitest';
import { auditFilterOf, auditPage, parseTime } from '../../../src/admin/api.js';
import { createAdminService } from '../../../src/admin/service.js';
import { createManualClock } from '../../../src/ops/clock.js';
import { createMemoryStores } from '../../../src/stores/memory/index.js';
import type { AuditEntry } from '../../../src/stores/ports.js';

const T0 = Date.UTC(2026, 11, 3, 12);

function entry(at: number, n: number, type = 'login'): AuditEntry {
  return { id: `${String(at).padStart(13, '0')}-${String(n).padStart(4, '0')}`, at, type, event: { type } };
}

describe('admin audit paging', () => {
  it('pages newest first without losing or repeating entries that share a millisecond', async () => {
    const stores = createMemoryStores();
    const clock = createManualClock(T0 + 60_000);
    const service = createAdminService({
      stores,
      issuer: 'https://gh.example/',
      accessTokenTtlSeconds: 300,
      clock,
    });
    // 7 entries in one millisecond between others: pages of 3 must cut through them.
    const entries = [
      entry(T0, 1),
      ...Array.from({ length: 7 }, (_, i) => entry(T0 + 5, 10 + i)),
      entry(T0 + 9, 99),
    ];
    await stores.audit.append(entries);
    const seen: string[] = [];
    let cursor: { at: number; id: string } | undefined;
    for (let page = 0; page < 10; page += 1) {
      const result = await auditPage(service, {}, 3, cursor);
      seen.push(...result.entries.map((found) => found.id));
      if (result.next === undefined) break;
      cursor = result.next;
    }
    expect(seen).toEqual(entries.map((found) => found.id).reverse());
  });

  it('reads since and until as ISO 8601, epoch ms or a duration back from now', () => {
    const now = T0;
    expect(parseTime('24h', now, 'since')).toBe(now - 86_400_000);
    expect(parseTime('15m', now, 'since')).toBe(now - 900_000);
    expect(parseTime('2026-12-01T00:00:00Z', now, 'since')).toBe(Date.UTC(2026, 11, 1));
    expect(parseTime(String(T0 - 5), now, 'since')).toBe(T0 - 5);
    expect(parseTime('', now, 'since')).toBeUndefined();
    expect(() => parseTime('yesterday-ish', now, 'since')).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_REQUEST' }),
    );
    expect(
      auditFilterOf((name) => ({ user: 'alice', event: 'oauth.token.', since: '1h' })[name], now),
    ).toEqual({
      username: 'alice',
      type: 'oauth.token.',
      since: now - 3_600_000,
    });
  });
});
