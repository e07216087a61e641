import type Database from 'better-sqlite3';
import type { EphemeralStore } from '../ports.js';
import { sweepLimit } from '../sweep-limit.js';
import { prepare } from './prepare.js';
import { parseJson } from './rows.js';
import { guarded } from './store-error.js';

interface Address {
  namespace: string;
  key: string;
}

export function createSqliteEphemeralStore(db: Database.Database): EphemeralStore {
  const upsert = prepare<Address & { value: string; expiresAt: number }>(
    db,
    `INSERT INTO ephemeral_records (namespace, key, value, expires_at)
     VALUES (@namespace, @key, @value, @expiresAt)
     ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
  );
  const selectLive = prepare<Address & { now: number }, string>(
    db,
    'SELECT value FROM ephemeral_records WHERE namespace = @namespace AND key = @key AND expires_at > @now',
  ).pluck();
  // One DELETE … RETURNING is the get-and-delete: of concurrent takes only the one that deletes sees a row.
  const takeLive = prepare<Address & { now: number }, string>(
    db,
    `DELETE FROM ephemeral_records WHERE namespace = @namespace AND key = @key AND expires_at > @now
     RETURNING value`,
  ).pluck();
  const deleteOne = prepare<Address>(
    db,
    'DELETE FROM ephemeral_records WHERE namespace = @namespace AND key = @key',
  );
  const deleteExpiredRows = prepare<{ now: number; limit: number }>(
    db,
    `DELETE FROM ephemeral_records WHERE rowid IN (
       SELECT rowid FROM ephemeral_records WHERE expires_at <= @now LIMIT @limit
     )`,
  );

  return {
    put: (namespace, key, value, expiresAt) =>
      guarded(() => {
        upsert.run({ namespace, key, value: JSON.stringify(value), expiresAt });
      }),
    get: (namespace, key, now) =>
      guarded(() => {
        const value = selectLive.get({ namespace, key, now });
        return value === undefined ? undefined : parseJson<Record<string, unknown>>(value);
      }),
    take: (namespace, key, now) =>
      guarded(() => {
        const value = takeLive.get({ namespace, key, now });
        return value === undefined ? undefined : parseJson<Record<string, unknown>>(value);
      }),
    delete: (namespace, key) => guarded(() => deleteOne.run({ namespace, key }).changes === 1),
    deleteExpired: (now, limit) =>
      guarded(() => {
        const max = sweepLimit(limit);
        return max === 0 ? 0 : deleteExpiredRows.run({ now, limit: max }).changes;
      }),
  };
}
