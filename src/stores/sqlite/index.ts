import Database from 'better-sqlite3';
import { GatehouseError } from '../../errors/gatehouse-error.js';
import type { CreateSessionResult, SessionKind, SessionRecord, SessionStore, Stores } from '../ports.js';
import { migrateSqlite } from './migrations.js';

/** How long a connection waits for another connection's write lock before failing, in milliseconds. */
const BUSY_TIMEOUT_MS = 5000;

/** Where the SQLite stores keep their data. */
export type SqliteStoresOptions =
  /** Open (creating if needed) this database file; `close()` closes it. */
  | { readonly path: string }
  /** Use a connection the caller owns; `close()` leaves it open. */
  | { readonly db: Database.Database };

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

/**
 * Store failures (lock wait exhausted, disk full, I/O error, corrupt file) become `ERR_STORE_UNAVAILABLE`
 * so the boundary fails closed with a 503; the SQLite error stays as `cause` for the log.
 */
function storeError(error: unknown): unknown {
  if (error instanceof Database.SqliteError) {
    return new GatehouseError('ERR_STORE_UNAVAILABLE', 'The SQLite session store failed.', {
      cause: error,
      details: { sqliteCode: error.code },
    });
  }
  return error;
}

function configure(db: Database.Database): void {
  // busy_timeout first: switching to WAL needs a lock another opener may hold.
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
}

const LIVE = 'idle_expires_at > @now AND absolute_expires_at > @now';

function createSqliteSessionStore(db: Database.Database): SessionStore {
  const prepare = <P extends object, R>(sql: string): Database.Statement<[P], R> =>
    db.prepare<[P], R>(sql).safeIntegers(false);

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

  const guarded = <T>(operation: () => T): Promise<T> => {
    try {
      return Promise.resolve(operation());
    } catch (error) {
      return Promise.reject(storeError(error));
    }
  };

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
        const max = Math.floor(limit);
        // LIMIT with a negative value means "no limit" in SQLite; the port means "nothing".
        if (!(max > 0)) return [];
        return deleteExpiredTx.immediate(now, max);
      }),
  };
}

/**
 * Stores in a SQLite database through `better-sqlite3`: the embedded default, durable across restarts and
 * safe for several processes sharing one file.
 *
 * The connection is set to WAL journaling, `synchronous = NORMAL`, `foreign_keys = ON` and a 5000 ms
 * `busy_timeout` (also when the caller passes its own `db`), and the schema is migrated before this
 * returns (see {@link migrateSqlite}). `close()` closes the database only when these stores opened it.
 *
 * `create` throws `ERR_SESSION_CONFLICT` for an id that already exists (live or expired, whatever the
 * cap); SQLite failures such as an exhausted lock wait surface as `ERR_STORE_UNAVAILABLE`.
 *
 * @example
 * ```ts
 * const stores = createSqliteStores({ path: '/var/lib/gatehouse/gatehouse.db' });
 * try {
 *   await stores.sessions.create(record, 5, clock.now());
 * } finally {
 *   await stores.close();
 * }
 * ```
 */
export function createSqliteStores(options: SqliteStoresOptions): Stores {
  const owned = 'path' in options;
  const db = owned ? new Database(options.path) : options.db;
  try {
    configure(db);
    migrateSqlite(db);
    const sessions = createSqliteSessionStore(db);
    return {
      kind: 'sqlite',
      sessions,
      async close() {
        if (owned && db.open) db.close();
      },
    };
  } catch (error) {
    if (owned) db.close();
    throw storeError(error);
  }
}
