import type { AuthorizationCodeRecord, AuthorizationCodeStore } from '../ports.js';
import { sweepLimit } from '../sweep-limit.js';
import { copyJson, type MemoryPort } from './copy.js';

interface StoredCode {
  readonly record: AuthorizationCodeRecord;
  /** Set by the first `consume`; the code stays until it expires so that replays are recognised. */
  readonly consumed: boolean;
}

export function createMemoryAuthorizationCodeStore(): MemoryPort<AuthorizationCodeStore> {
  const codes = new Map<string, StoredCode>();

  const store: AuthorizationCodeStore = {
    async create(record) {
      if (codes.has(record.codeHash)) {
        throw new Error('An authorization code with this hash already exists.');
      }
      codes.set(record.codeHash, { record: copyJson(record), consumed: false });
    },

    async consume(codeHash, now) {
      const stored = codes.get(codeHash);
      if (stored === undefined || stored.record.expiresAt <= now) return undefined;
      if (stored.consumed) return { status: 'replayed', record: copyJson(stored.record) };
      codes.set(codeHash, { record: stored.record, consumed: true });
      return { status: 'consumed', record: copyJson(stored.record) };
    },

    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      let removed = 0;
      for (const [codeHash, stored] of codes) {
        if (removed >= max) break;
        if (stored.record.expiresAt > now) continue;
        codes.delete(codeHash);
        removed += 1;
      }
      return removed;
    },
  };

  return { store, clear: () => codes.clear() };
}
