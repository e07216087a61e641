import type { CounterStore } from '../ports.js';
import { type CounterRow, toCounterResult } from '../sql-rows.js';
import { sweepLimit } from '../sweep-limit.js';
import type { PostgresContext } from './context.js';
import { sweepStatement } from './rows.js';

export function createPostgresCounterStore(ctx: PostgresContext): CounterStore {
  const { counters } = ctx.tables;

  return {
    // One upsert: a new key, a live window and an ended window are told apart inside the statement, and
    // concurrent increments of one key queue on its row, so none reads a count another is about to write.
    async increment(key, windowMs, now) {
      const { rows } = await ctx.query<CounterRow>(
        `INSERT INTO ${counters} AS counter (key, count, reset_at) VALUES ($1, 1, $3)
         ON CONFLICT (key) DO UPDATE SET
           count = CASE WHEN counter.reset_at <= $2 THEN 1 ELSE counter.count + 1 END,
           reset_at = CASE WHEN counter.reset_at <= $2 THEN $3 ELSE counter.reset_at END
         RETURNING count, reset_at`,
        [key, now, now + windowMs],
      );
      const row = rows[0];
      if (row === undefined) throw new Error('The counter upsert returned no row.');
      return toCounterResult(row);
    },
    async peek(key, now) {
      const { rows } = await ctx.query<CounterRow>(
        `SELECT count, reset_at FROM ${counters} WHERE key = $1 AND reset_at > $2`,
        [key, now],
      );
      return rows[0] === undefined ? undefined : toCounterResult(rows[0]);
    },
    async reset(key) {
      await ctx.query(`DELETE FROM ${counters} WHERE key = $1`, [key]);
    },
    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      if (max === 0) return 0;
      const { rowCount } = await ctx.query(sweepStatement(counters, ['key'], 'reset_at <= $1'), [now, max]);
      return rowCount ?? 0;
    },
  };
}
