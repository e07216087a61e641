import type Database from 'better-sqlite3';
import type { CounterStore } from '../ports.js';
import { type CounterRow, toCounterResult } from '../sql-rows.js';
import { sweepLimit } from '../sweep-limit.js';
import { prepare } from './prepare.js';
import { guarded } from './store-error.js';

export function createSqliteCounterStore(db: Database.Database): CounterStore {
  // One upsert: a new key, a live window and an ended window are told apart inside the statement, so
  // concurrent increments never read a count another one is about to write.
  const upsert = prepare<{ key: string; now: number; resetAt: number }, CounterRow>(
    db,
    `INSERT INTO counters (key, count, reset_at) VALUES (@key, 1, @resetAt)
     ON CONFLICT (key) DO UPDATE SET
       count = CASE WHEN reset_at <= @now THEN 1 ELSE count + 1 END,
       reset_at = CASE WHEN reset_at <= @now THEN @resetAt ELSE reset_at END
     RETURNING count, reset_at`,
  );
  const selectLive = prepare<{ key: string; now: number }, CounterRow>(
    db,
    'SELECT count, reset_at FROM counters WHERE key = @key AND reset_at > @now',
  );
  const deleteOne = prepare<{ key: string }>(db, 'DELETE FROM counters WHERE key = @key');
  const deleteExpiredRows = prepare<{ now: number; limit: number }>(
    db,
    'DELETE FROM counters WHERE key IN (SELECT key FROM counters WHERE reset_at <= @now LIMIT @limit)',
  );

  return {
    increment: (key, windowMs, now) =>
      guarded(() => {
        const row = upsert.get({ key, now, resetAt: now + windowMs });
        if (row === undefined) throw new Error('The counter upsert returned no row.');
        return toCounterResult(row);
      }),
    peek: (key, now) =>
      guarded(() => {
        const row = selectLive.get({ key, now });
        return row === undefined ? undefined : toCounterResult(row);
      }),
    reset: (key) =>
      guarded(() => {
        deleteOne.run({ key });
      }),
    deleteExpired: (now, limit) =>
      guarded(() => {
        const max = sweepLimit(limit);
        return max === 0 ? 0 : deleteExpiredRows.run({ now, limit: max }).changes;
      }),
  };
}
