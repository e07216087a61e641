import type Database from 'better-sqlite3';
import type { RevocationRecord, RevocationStore } from '../ports.js';
import { type RevocationRow, toRevocationRecord } from '../sql-rows.js';
import { sweepLimit } from '../sweep-limit.js';
import { prepare } from './prepare.js';
import { guarded } from './store-error.js';

/**
 * Adds a revocation entry on `db`, synchronously, for the revocation port and for ports that write an
 * entry inside their own transaction (a grant's revocation). Idempotent: the first entry stands, so a
 * repeat never moves an entry past a reader's cursor. The `revocations_move_watermark` trigger moves the
 * watermark with every entry actually inserted.
 */
export function prepareRevocationInsert(db: Database.Database): (record: RevocationRecord) => void {
  const insert = prepare<{ kind: string; id: string; revokedAt: number; expiresAt: number }>(
    db,
    `INSERT INTO revocations (kind, id, revoked_at, expires_at) VALUES (@kind, @id, @revokedAt, @expiresAt)
     ON CONFLICT (kind, id) DO NOTHING`,
  );
  return (record) => {
    insert.run({
      kind: record.kind,
      id: record.id,
      revokedAt: record.revokedAt,
      expiresAt: record.expiresAt,
    });
  };
}

export function createSqliteRevocationStore(db: Database.Database): RevocationStore {
  const insert = prepareRevocationInsert(db);
  const selectSince = prepare<{ since: number; now: number }, RevocationRow>(
    db,
    `SELECT * FROM revocations WHERE revoked_at >= @since AND expires_at > @now
     ORDER BY revoked_at, kind, id`,
  );
  const selectWatermark = prepare<Record<string, never>, number>(
    db,
    'SELECT value FROM revocation_watermark WHERE id = 1',
  ).pluck();
  const deleteExpiredRows = prepare<{ now: number; limit: number }>(
    db,
    `DELETE FROM revocations WHERE rowid IN (
       SELECT rowid FROM revocations WHERE expires_at <= @now LIMIT @limit
     )`,
  );

  return {
    add: (record) => guarded(() => insert(record)),
    listSince: (since, now) => guarded(() => selectSince.all({ since, now }).map(toRevocationRecord)),
    watermark: () => guarded(() => selectWatermark.get({}) ?? 0),
    deleteExpired: (now, limit) =>
      guarded(() => {
        const max = sweepLimit(limit);
        return max === 0 ? 0 : deleteExpiredRows.run({ now, limit: max }).changes;
      }),
  };
}
