import type Database from 'better-sqlite3';
import { GatehouseError } from '../../errors/gatehouse-error.js';
import type { CreateSessionResult, SessionLimit, SessionRecord, SessionStore } from '../ports.js';
import { sessionFields } from '../session-fields.js';
import { type SessionRow, sessionRowMapper } from '../sql-rows.js';
import { sweepLimit } from '../sweep-limit.js';
import { preparePage, prepare as prepareStatement } from './prepare.js';
import { parseJson } from './rows.js';
import { guarded } from './store-error.js';

const toRecord = sessionRowMapper(parseJson);

/** The order of `listByPrincipal`, for rows a `DELETE … RETURNING` hands back in no particular order. */
function byCreatedAtThenId(a: SessionRow<'text'>, b: SessionRow<'text'>): number {
  if (a.created_at !== b.created_at) return a.created_at - b.created_at;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

const LIVE = 'idle_expires_at > @now AND absolute_expires_at > @now';

export function createSqliteSessionStore(db: Database.Database): SessionStore {
  const prepare = <P extends object, R>(sql: string): Database.Statement<[P], R> =>
    prepareStatement<P, R>(db, sql);

  const selectId = db.prepare<[string], number>('SELECT 1 FROM sessions WHERE id = ?').pluck();
  const countLive = prepare<{ principalKey: string; now: number }, number>(
    `SELECT count(*) FROM sessions WHERE principal_key = @principalKey AND ${LIVE}`,
  ).pluck();
  const insert = db.prepare<[Record<string, unknown>]>(
    `INSERT INTO sessions (id, principal_key, kind, created_at, last_seen_at, idle_timeout_ms, idle_expires_at,
       absolute_expires_at, version, data)
     VALUES (@id, @principalKey, @kind, @createdAt, @lastSeenAt, @idleTimeoutMs, @idleExpiresAt,
       @absoluteExpiresAt, @version, @data)`,
  );
  // The per-principal index narrows this to a handful of rows (at most the cap is live), so the sort is cheap.
  const selectEvictable = prepare<
    { principalKey: string; now: number; kinds: string; limit: number },
    SessionRow<'text'>
  >(
    `SELECT * FROM sessions
     WHERE principal_key = @principalKey AND ${LIVE} AND kind IN (SELECT value FROM json_each(@kinds))
     ORDER BY last_seen_at, created_at, id
     LIMIT @limit`,
  );
  const deleteIds = prepare<{ ids: string }, never>(
    'DELETE FROM sessions WHERE id IN (SELECT value FROM json_each(@ids))',
  );
  const selectLive = prepare<{ id: string; now: number }, SessionRow<'text'>>(
    `SELECT * FROM sessions WHERE id = @id AND ${LIVE}`,
  );
  // On the right of SET, columns hold their values from before the update, so the deadline uses the given
  // timeout or, when none is given (NULL), the stored one.
  const touchOwned = prepare<
    { id: string; principalKey: string; now: number; idleTimeoutMs: number | null },
    SessionRow<'text'>
  >(
    `UPDATE sessions SET
       last_seen_at = @now,
       idle_timeout_ms = coalesce(@idleTimeoutMs, idle_timeout_ms),
       idle_expires_at = min(@now + coalesce(@idleTimeoutMs, idle_timeout_ms), absolute_expires_at)
     WHERE id = @id AND principal_key = @principalKey AND ${LIVE}
     RETURNING *`,
  );
  const compareAndSwap = prepare<{ id: string; expectedVersion: number; data: string }, SessionRow<'text'>>(
    `UPDATE sessions SET data = @data, version = version + 1
     WHERE id = @id AND version = @expectedVersion
     RETURNING *`,
  );
  const deleteById = db.prepare<[string]>('DELETE FROM sessions WHERE id = ?');
  const deleteOwnedRow = prepare<{ id: string; principalKey: string }, SessionRow<'text'>>(
    'DELETE FROM sessions WHERE id = @id AND principal_key = @principalKey RETURNING *',
  );
  const deleteAllOf = prepare<{ principalKey: string }, SessionRow<'text'>>(
    'DELETE FROM sessions WHERE principal_key = @principalKey RETURNING *',
  );
  const selectByPrincipal = prepare<{ principalKey: string; now: number }, SessionRow<'text'>>(
    `SELECT * FROM sessions WHERE principal_key = @principalKey AND ${LIVE} ORDER BY created_at, id`,
  );
  const selectPage = preparePage<SessionRow<'text'>>(db, 'sessions', 'id', LIVE);
  // DELETE … LIMIT needs a compile-time option the bundled SQLite lacks; a LIMITed id subquery does the same.
  const deleteExpiredRows = prepare<{ now: number; limit: number }, SessionRow<'text'>>(
    `DELETE FROM sessions WHERE id IN (
       SELECT id FROM sessions WHERE idle_expires_at <= @now OR absolute_expires_at <= @now LIMIT @limit
     )
     RETURNING *`,
  );

  // IMMEDIATE takes the write lock before the count, so no other connection or process can insert or evict
  // between this count and this insert: N concurrent creates against a cap of K leave at most K live
  // sessions, and each evicted row is deleted (and returned) by exactly one of them.
  const createTx = db.transaction(
    (record: SessionRecord, limit: SessionLimit, now: number): CreateSessionResult => {
      if (selectId.get(record.id) !== undefined) {
        throw new GatehouseError('ERR_SESSION_CONFLICT', 'A session with this id already exists.');
      }
      const { principalKey } = record;
      const activeCount = countLive.get({ principalKey, now }) ?? 0;
      let evicted: SessionRow<'text'>[] = [];
      if (activeCount >= limit.max) {
        const needed = activeCount - limit.max + 1;
        const kinds = limit.evictKinds ?? [];
        evicted =
          kinds.length === 0
            ? []
            : selectEvictable.all({ principalKey, now, kinds: JSON.stringify(kinds), limit: needed });
        if (evicted.length < needed) return { created: false, activeCount };
        deleteIds.run({ ids: JSON.stringify(evicted.map((row) => row.id)) });
      }
      insert.run({ ...sessionFields(record) });
      return { created: true, activeCount, evicted: evicted.map(toRecord) };
    },
  );
  const deleteExpiredTx = db.transaction((now: number, limit: number): SessionRecord[] =>
    deleteExpiredRows.all({ now, limit }).map(toRecord),
  );

  return {
    create: (record, limit, now) => guarded(() => createTx.immediate(record, limit, now)),
    get: (id, now) =>
      guarded(() => {
        const row = selectLive.get({ id, now });
        return row === undefined ? undefined : toRecord(row);
      }),
    touch: (id, principalKey, now, idleTimeoutMs) =>
      guarded(() => {
        const row = touchOwned.get({ id, principalKey, now, idleTimeoutMs: idleTimeoutMs ?? null });
        return row === undefined ? undefined : toRecord(row);
      }),
    update: (id, expectedVersion, data) =>
      guarded(() => {
        const row = compareAndSwap.get({ id, expectedVersion, data: JSON.stringify(data) });
        return row === undefined ? undefined : toRecord(row);
      }),
    delete: (id) => guarded(() => deleteById.run(id).changes === 1),
    deleteOwned: (id, principalKey) =>
      guarded(() => {
        const row = deleteOwnedRow.get({ id, principalKey });
        return row === undefined ? undefined : toRecord(row);
      }),
    deleteByPrincipal: (principalKey) =>
      guarded(() => deleteAllOf.all({ principalKey }).sort(byCreatedAtThenId).map(toRecord)),
    listByPrincipal: (principalKey, now) =>
      guarded(() => selectByPrincipal.all({ principalKey, now }).map(toRecord)),
    list: (now, page) => guarded(() => selectPage(now, page).map(toRecord)),
    deleteExpired: (now, limit) =>
      guarded(() => {
        const max = sweepLimit(limit);
        return max === 0 ? [] : deleteExpiredTx.immediate(now, max);
      }),
  };
}
