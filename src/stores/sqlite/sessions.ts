import type Database from 'better-sqlite3';
import { GatehouseError } from '../../errors/gatehouse-error.js';
import type { CreateSessionResult, SessionKind, SessionRecord, SessionStore } from '../ports.js';
import { sweepLimit } from '../sweep-limit.js';
import { prepare as prepareStatement } from './prepare.js';
import { guarded } from './store-error.js';

interface SessionRow {
  id: string;
  principal_key: string;
  kind: string;
  created_at: number;
  last_seen_at: number;
  idle_expires_at: number;
  absolute_expires_at: number;
  version: number;
  data: string;
}

function toRecord(row: SessionRow): SessionRecord {
  return {
    id: row.id,
    principalKey: row.principal_key,
    kind: row.kind as SessionKind,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    idleExpiresAt: row.idle_expires_at,
    absoluteExpiresAt: row.absolute_expires_at,
    version: row.version,
    data: JSON.parse(row.data) as Record<string, unknown>,
  };
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
    `INSERT INTO sessions (id, principal_key, kind, created_at, last_seen_at, idle_expires_at,
       absolute_expires_at, version, data)
     VALUES (@id, @principalKey, @kind, @createdAt, @lastSeenAt, @idleExpiresAt, @absoluteExpiresAt,
       @version, @data)`,
  );
  const selectLive = prepare<{ id: string; now: number }, SessionRow>(
    `SELECT * FROM sessions WHERE id = @id AND ${LIVE}`,
  );
  const touchLive = prepare<{ id: string; now: number; idleDeadline: number }, SessionRow>(
    `UPDATE sessions SET last_seen_at = @now, idle_expires_at = min(@idleDeadline, absolute_expires_at)
     WHERE id = @id AND ${LIVE}
     RETURNING *`,
  );
  const compareAndSwap = prepare<{ id: string; expectedVersion: number; data: string }, SessionRow>(
    `UPDATE sessions SET data = @data, version = version + 1
     WHERE id = @id AND version = @expectedVersion
     RETURNING *`,
  );
  const deleteById = db.prepare<[string]>('DELETE FROM sessions WHERE id = ?');
  const selectByPrincipal = prepare<{ principalKey: string; now: number }, SessionRow>(
    `SELECT * FROM sessions WHERE principal_key = @principalKey AND ${LIVE} ORDER BY created_at, id`,
  );
  // DELETE … LIMIT needs a compile-time option the bundled SQLite lacks; a LIMITed id subquery does the same.
  const deleteExpiredRows = prepare<{ now: number; limit: number }, SessionRow>(
    `DELETE FROM sessions WHERE id IN (
       SELECT id FROM sessions WHERE idle_expires_at <= @now OR absolute_expires_at <= @now LIMIT @limit
     )
     RETURNING *`,
  );

  // IMMEDIATE takes the write lock before the count, so no other connection or process can insert between
  // this count and this insert: N concurrent creates against a cap of K admit exactly K.
  const createTx = db.transaction(
    (record: SessionRecord, maxPerPrincipal: number, now: number): CreateSessionResult => {
      if (selectId.get(record.id) !== undefined) {
        throw new GatehouseError('ERR_SESSION_CONFLICT', 'A session with this id already exists.');
      }
      const activeCount = countLive.get({ principalKey: record.principalKey, now }) ?? 0;
      if (activeCount >= maxPerPrincipal) return { created: false, activeCount };
      insert.run({
        id: record.id,
        principalKey: record.principalKey,
        kind: record.kind,
        createdAt: record.createdAt,
        lastSeenAt: record.lastSeenAt,
        idleExpiresAt: record.idleExpiresAt,
        absoluteExpiresAt: record.absoluteExpiresAt,
        version: record.version,
        data: JSON.stringify(record.data),
      });
      return { created: true, activeCount };
    },
  );
  const deleteExpiredTx = db.transaction((now: number, limit: number): SessionRecord[] =>
    deleteExpiredRows.all({ now, limit }).map(toRecord),
  );

  return {
    create: (record, maxPerPrincipal, now) => guarded(() => createTx.immediate(record, maxPerPrincipal, now)),
    get: (id, now) =>
      guarded(() => {
        const row = selectLive.get({ id, now });
        return row === undefined ? undefined : toRecord(row);
      }),
    touch: (id, now, idleTimeoutMs) =>
      guarded(() => {
        const row = touchLive.get({ id, now, idleDeadline: now + idleTimeoutMs });
        return row === undefined ? undefined : toRecord(row);
      }),
    update: (id, expectedVersion, data) =>
      guarded(() => {
        const row = compareAndSwap.get({ id, expectedVersion, data: JSON.stringify(data) });
        return row === undefined ? undefined : toRecord(row);
      }),
    delete: (id) => guarded(() => deleteById.run(id).changes === 1),
    listByPrincipal: (principalKey, now) =>
      guarded(() => selectByPrincipal.all({ principalKey, now }).map(toRecord)),
    deleteExpired: (now, limit) =>
      guarded(() => {
        const max = sweepLimit(limit);
        return max === 0 ? [] : deleteExpiredTx.immediate(now, max);
      }),
  };
}
