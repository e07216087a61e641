import type { EphemeralStore } from '../ports.js';
import { sweepLimit } from '../sweep-limit.js';
import type { PostgresContext } from './context.js';
import { sweepStatement } from './rows.js';

export function createPostgresEphemeralStore(ctx: PostgresContext): EphemeralStore {
  const { ephemeralRecords } = ctx.tables;
  const value = async (text: string, values: readonly unknown[]) => {
    const { rows } = await ctx.query<{ value: Record<string, unknown> }>(text, values);
    return rows[0]?.value;
  };

  return {
    async put(namespace, key, record, expiresAt) {
      await ctx.query(
        `INSERT INTO ${ephemeralRecords} (namespace, key, value, expires_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
        [namespace, key, JSON.stringify(record), expiresAt],
      );
    },
    get: (namespace, key, now) =>
      value(`SELECT value FROM ${ephemeralRecords} WHERE namespace = $1 AND key = $2 AND expires_at > $3`, [
        namespace,
        key,
        now,
      ]),
    // One DELETE … RETURNING is the get-and-delete: of concurrent takes only the one that deletes sees a row.
    take: (namespace, key, now) =>
      value(
        `DELETE FROM ${ephemeralRecords} WHERE namespace = $1 AND key = $2 AND expires_at > $3 RETURNING value`,
        [namespace, key, now],
      ),
    async delete(namespace, key) {
      const { rowCount } = await ctx.query(
        `DELETE FROM ${ephemeralRecords} WHERE namespace = $1 AND key = $2`,
        [namespace, key],
      );
      return rowCount === 1;
    },
    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      if (max === 0) return 0;
      const { rowCount } = await ctx.query(
        sweepStatement(ephemeralRecords, ['namespace', 'key'], 'expires_at <= $1'),
        [now, max],
      );
      return rowCount ?? 0;
    },
  };
}
