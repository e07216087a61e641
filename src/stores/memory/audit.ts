import { auditLimit, compareIds, matchesAuditQuery } from '../list-page.js';
import type { AuditEntry, AuditStore } from '../ports.js';
import { sweepLimit } from '../sweep-limit.js';
import { copyJson, type MemoryPort } from './copy.js';

/** The log's order: `at`, then `id`. */
function byAtThenId(a: AuditEntry, b: AuditEntry): number {
  if (a.at !== b.at) return a.at - b.at;
  return compareIds(a.id, b.id);
}

/** The index of the first entry of `entries` (sorted by {@link byAtThenId}) not before `entry`. */
function lowerBound(entries: readonly AuditEntry[], at: number, id?: string): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const probe = entries[middle] as AuditEntry;
    const before = probe.at < at || (probe.at === at && id !== undefined && compareIds(probe.id, id) <= 0);
    if (before) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * The audit log as one array sorted by (`at`, `id`) plus the set of stored ids: `since`, `until` and
 * `after` become binary searches, and retention removes a prefix. Every method runs to completion without
 * awaiting, so an append is one step.
 */
export function createMemoryAuditStore(): MemoryPort<AuditStore> {
  let entries: AuditEntry[] = [];
  const ids = new Set<string>();

  const store: AuditStore = {
    async append(batch) {
      for (const entry of batch) {
        if (ids.has(entry.id)) continue;
        const stored = copyJson(entry);
        ids.add(stored.id);
        // Writers append in time order, so the insertion point is almost always the end.
        const last = entries[entries.length - 1];
        if (last === undefined || byAtThenId(last, stored) < 0) entries.push(stored);
        else entries.splice(lowerBound(entries, stored.at, stored.id), 0, stored);
      }
    },

    async query(query) {
      const max = auditLimit(query.limit);
      if (max === 0) return [];
      let start = query.since === undefined ? 0 : lowerBound(entries, query.since);
      if (query.after !== undefined)
        start = Math.max(start, lowerBound(entries, query.after.at, query.after.id));
      const end = query.until === undefined ? entries.length : lowerBound(entries, query.until);
      const found: AuditEntry[] = [];
      if (query.order === 'asc') {
        for (let index = start; index < end && found.length < max; index += 1) {
          const entry = entries[index] as AuditEntry;
          if (matchesAuditQuery(entry, query)) found.push(entry);
        }
      } else {
        for (let index = end - 1; index >= start && found.length < max; index -= 1) {
          const entry = entries[index] as AuditEntry;
          if (matchesAuditQuery(entry, query)) found.push(entry);
        }
      }
      return found.map(copyJson);
    },

    async deleteBefore(before, limit) {
      const count = Math.min(lowerBound(entries, before), sweepLimit(limit));
      for (const entry of entries.slice(0, count)) ids.delete(entry.id);
      entries = entries.slice(count);
      return count;
    },
  };

  return {
    store,
    clear() {
      entries = [];
      ids.clear();
    },
  };
}
