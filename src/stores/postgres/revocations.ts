import type { RevocationStore } from '../ports.js';
import { type RevocationRow, toRevocationRecord } from '../sql-rows.js';
import { sweepLimit } from '../sweep-limit.js';
import type { PostgresContext } from './context.js';
import { sweepStatement } from './rows.js';
import type { Tables } from './tables.js';

/**
 * Inserts revocation entries with `$1` kind, each id of the `$2` array, `$3` revoked at and `$4` expiry,
 * for the revocation port and for a grant's revocation inside its transaction. Idempotent: the first entry
 * stands, so a repeat never moves an entry past a reader's cursor. The `revocations_move_watermark`
 * trigger moves the watermark with every entry actually inserted, in the inserting transaction.
 */
export function revocationInsert(tables: Tables): string {
  return `INSERT INTO ${tables.revocations} (kind, id, revoked_at, expires_at)
    SELECT $1::text, id, $3::bigint, $4::bigint FROM unnest($2::text[]) AS id
    ON CONFLICT (kind, id) DO NOTHING`;
}

export function createPostgresRevocationStore(ctx: PostgresContext): RevocationStore {
  const { revocations, revocationWatermark } = ctx.tables;
  const insert = revocationInsert(ctx.tables);

  return {
    async add(record) {
      await ctx.query(insert, [record.kind, [record.id], record.revokedAt, record.expiresAt]);
    },
    async listSince(since, now) {
      const { rows } = await ctx.query<RevocationRow>(
        `SELECT * FROM ${revocations} WHERE revoked_at >= $1 AND expires_at > $2 ORDER BY revoked_at, kind, id`,
        [since, now],
      );
      return rows.map(toRevocationRecord);
    },
    async watermark() {
      const { rows } = await ctx.query<{ value: number }>(
        `SELECT value FROM ${revocationWatermark} WHERE id = 1`,
      );
      return rows[0]?.value ?? 0;
    },
    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      if (max === 0) return 0;
      const { rowCount } = await ctx.query(sweepStatement(revocations, ['kind', 'id'], 'expires_at <= $1'), [
        now,
        max,
      ]);
      return rowCount ?? 0;
    },
  };
}
