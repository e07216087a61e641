import type { RevocationRecord, RevocationStore } from '../ports.js';
import { sweepLimit } from '../sweep-limit.js';
import { compareBinary, type MemoryPort } from './copy.js';

function keyOf(record: Pick<RevocationRecord, 'kind' | 'id'>): string {
  return `${record.kind}:${record.id}`;
}

/** The order of the SQL adapters' `ORDER BY revoked_at, kind, id`. */
function byRevokedAt(a: RevocationRecord, b: RevocationRecord): number {
  if (a.revokedAt !== b.revokedAt) return a.revokedAt - b.revokedAt;
  return compareBinary(a.kind, b.kind) || compareBinary(a.id, b.id);
}

/** The revocation port, and a synchronous add for ports that write an entry in the same step as their own change. */
export interface MemoryRevocations extends MemoryPort<RevocationStore> {
  /** What `store.add` does, without a promise, so a caller's check-and-write stays one synchronous step. */
  add(record: RevocationRecord): void;
}

export function createMemoryRevocationStore(): MemoryRevocations {
  const revocations = new Map<string, RevocationRecord>();
  /** Entries ever added; survives `deleteExpired`, so it never goes back. */
  let added = 0;

  const add = (record: RevocationRecord): void => {
    const key = keyOf(record);
    // Idempotent: the first entry stands, so a repeat never moves an entry past a reader's cursor.
    if (revocations.has(key)) return;
    revocations.set(key, {
      kind: record.kind,
      id: record.id,
      revokedAt: record.revokedAt,
      expiresAt: record.expiresAt,
    });
    added += 1;
  };

  const store: RevocationStore = {
    async add(record) {
      add(record);
    },

    async listSince(since, now) {
      const entries: RevocationRecord[] = [];
      for (const record of revocations.values()) {
        if (record.revokedAt >= since && record.expiresAt > now) entries.push({ ...record });
      }
      return entries.sort(byRevokedAt);
    },

    async watermark() {
      return added;
    },

    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      let removed = 0;
      for (const [key, record] of revocations) {
        if (removed >= max) break;
        if (record.expiresAt > now) continue;
        revocations.delete(key);
        removed += 1;
      }
      return removed;
    },
  };

  return { store, add, clear: () => revocations.clear() };
}
