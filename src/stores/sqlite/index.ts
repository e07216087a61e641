import { closeSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Stores } from '../ports.js';
import { memoryRateLimiter } from '../rate-limiter.js';
import { createSqliteAuditStore } from './audit.js';
import { createSqliteClientStore } from './clients.js';
import { createSqliteAuthorizationCodeStore } from './codes.js';
import { createSqliteConsentStore } from './consents.js';
import { createSqliteCounterStore } from './counters.js';
import { createSqliteEphemeralStore } from './ephemeral.js';
import { createSqliteGrantStore } from './grants.js';
import { migrateSqlite } from './migrations.js';
import { createSqliteRevocationStore } from './revocations.js';
import { createSqliteSessionStore } from './sessions.js';
import { createSqliteSigningKeyStore } from './signing-keys.js';
import { storeError } from './store-error.js';
import { createSqliteUpstreamTokenStore } from './upstream-tokens.js';
import { createSqliteUserStore } from './users.js';

/** How long a connection waits for another connection's write lock before failing, in milliseconds. */
const BUSY_TIMEOUT_MS = 5000;

/** Where the SQLite stores keep their data. */
export type SqliteStoresOptions =
  /** Open (creating if needed) this database file; `close()` closes it. */
  | { readonly path: string }
  /** Use a connection the caller owns; `close()` leaves it open. */
  | { readonly db: Database.Database };

function configure(db: Database.Database): void {
  // busy_timeout first: switching to WAL needs a lock another opener may hold.
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  switchToWal(db);
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
}

/** Pause between two attempts at the WAL switch, in milliseconds. */
const WAL_RETRY_MS = 10;

/**
 * `journal_mode = WAL`, retried while another process opening the same new file holds the lock: SQLite
 * answers that switch with `SQLITE_BUSY` at once, without waiting out `busy_timeout`, when two openers
 * race for it. Gives up after `BUSY_TIMEOUT_MS`, like any other lock wait.
 */
function switchToWal(db: Database.Database): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let waited = 0; ; waited += WAL_RETRY_MS) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (error) {
      const busy = error instanceof Database.SqliteError && error.code.startsWith('SQLITE_BUSY');
      if (!busy || waited >= BUSY_TIMEOUT_MS) throw error;
      // A synchronous pause: the store opens synchronously, before anything else runs.
      Atomics.wait(pause, 0, 0, WAL_RETRY_MS);
    }
  }
}

/**
 * Stores in a SQLite database through `better-sqlite3`: the embedded default, durable across restarts and
 * safe for several processes sharing one file.
 *
 * The connection is set to WAL journaling, `synchronous = NORMAL`, `foreign_keys = ON` and a 5000 ms
 * `busy_timeout` (also when the caller passes its own `db`), and the schema is migrated before this
 * returns (see {@link migrateSqlite}). `close()` closes the database only when these stores opened it.
 *
 * `sessions.create` throws `ERR_SESSION_CONFLICT` for an id that already exists (live or expired, whatever
 * the cap); SQLite failures such as an exhausted lock wait surface as `ERR_STORE_UNAVAILABLE`. Inserting a
 * duplicate authorization code hash, grant id or refresh token hash throws the SQLite constraint error
 * unchanged (see {@link storeError}).
 *
 * @example
 * ```ts
 * const stores = createSqliteStores({ path: '/var/lib/gatehouse/gatehouse.db' });
 * try {
 *   await stores.sessions.create(record, { max: 5 }, clock.now());
 * } finally {
 *   await stores.close();
 * }
 * ```
 */
export function createSqliteStores(options: SqliteStoresOptions): Stores {
  const owned = 'path' in options;
  const db = owned ? new Database(createPrivately(options.path)) : options.db;
  try {
    configure(db);
    migrateSqlite(db);
    return {
      kind: 'sqlite',
      rateLimiter: memoryRateLimiter,
      sessions: createSqliteSessionStore(db),
      users: createSqliteUserStore(db),
      clients: createSqliteClientStore(db),
      codes: createSqliteAuthorizationCodeStore(db),
      grants: createSqliteGrantStore(db),
      revocations: createSqliteRevocationStore(db),
      consents: createSqliteConsentStore(db),
      upstreamTokens: createSqliteUpstreamTokenStore(db),
      signingKeys: createSqliteSigningKeyStore(db),
      ephemeral: createSqliteEphemeralStore(db),
      counters: createSqliteCounterStore(db),
      audit: createSqliteAuditStore(db),
      async close() {
        if (owned && db.open) db.close();
      },
    };
  } catch (error) {
    if (owned) db.close();
    throw storeError(error);
  }
}

/**
 * Creates the database file with mode 0600 before SQLite opens it: it holds password hashes and sealed
 * keys, and SQLite gives its WAL and shared-memory files the database file's permissions.
 */
function createPrivately(path: string): string {
  if (path === ':memory:' || path === '') return path;
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  return path;
}
