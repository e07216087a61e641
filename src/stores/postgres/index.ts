import type { Pool } from 'pg';
import type { Stores } from '../ports.js';
import { createPostgresAuditStore } from './audit.js';
import { createPostgresBus } from './bus.js';
import { createPostgresClientStore } from './clients.js';
import { createPostgresAuthorizationCodeStore } from './codes.js';
import { createPostgresConsentStore } from './consents.js';
import { createPostgresContext } from './context.js';
import { createPostgresCounterStore } from './counters.js';
import { createPostgresEphemeralStore } from './ephemeral.js';
import { createPostgresGrantStore } from './grants.js';
import { migratePostgres } from './migrations.js';
import { createPool, DEFAULT_POOL_SIZE, dedicatedConnectionConfig } from './pool.js';
import { createPostgresRateLimits } from './rate-limiter.js';
import { createPostgresRevocationStore } from './revocations.js';
import { createPostgresSessionStore } from './sessions.js';
import { createPostgresSigningKeyStore } from './signing-keys.js';
import { storeError } from './store-error.js';
import { createPostgresUpstreamTokenStore } from './upstream-tokens.js';
import { createPostgresUserStore } from './users.js';

export { migratePostgres, POSTGRES_MIGRATIONS, type PostgresMigration } from './migrations.js';

interface CommonOptions {
  /** The schema holding Gatehouse's tables, created when missing. Default `gatehouse`. */
  readonly schema?: string;
  /** Bring the schema up to date before resolving (see {@link migratePostgres}). Default true. */
  readonly migrate?: boolean;
}

/** Where the PostgreSQL stores keep their data. */
export type PostgresStoresOptions =
  /** Open a pool of at most `max` connections (default 10) to `url`; `close()` ends it. */
  | (CommonOptions & { readonly url: string; readonly max?: number })
  /** Use a pool the caller owns; `close()` leaves it open. */
  | (CommonOptions & { readonly pool: Pool });

/** Refuses a schema name PostgreSQL would silently cut (identifiers are at most 63 bytes) or cannot hold. */
function checkSchema(schema: string): void {
  if (schema.length === 0 || Buffer.byteLength(schema) > 63 || schema.includes('\0')) {
    throw new RangeError('schema must be 1 to 63 bytes, without NUL');
  }
}

/**
 * Stores in a PostgreSQL schema through `pg`: durable, and shared by every instance (and the CLI) on the
 * same schema, with rate limits and a cluster bus (`LISTEN/NOTIFY`) that reach all of them.
 *
 * A pool this opens has `application_name` `gatehouse`, a 5 s connect timeout, a 10 s statement timeout
 * (server and client side) and TCP keep-alive; every statement reads `int8` as a JS number without
 * touching the process-wide `pg.types`. Both kinds of pool get an `'error'` listener, so a connection
 * failing while idle never crashes the process (the next statement reports the outage). Tables live in
 * `schema`, every identifier quoted; the schema is migrated before this resolves unless `migrate` is
 * false, and the bus listens once it resolves.
 *
 * Operations are atomic without reading and writing across an await: single statements where they can
 * be, transactions holding an advisory lock where rows to lock do not exist yet (the per-principal
 * session cap), `FOR UPDATE SKIP LOCKED` for sweeps. A failed or lost connection, a server shutting down
 * or an exhausted timeout surfaces as `ERR_STORE_UNAVAILABLE` (see `storeError`), and the same `Stores`
 * works again once the server is back; `sessions.create` throws `ERR_SESSION_CONFLICT` for an existing
 * id; other constraint violations (a duplicate code hash, grant id or refresh token hash) pass through
 * unchanged. `close()` is idempotent: it stops the bus and the rate-limit sweep and ends a pool it
 * opened; afterwards every operation, `bus.publish` included, rejects.
 *
 * @example
 * ```ts
 * const stores = await createPostgresStores({ url: 'postgres://gatehouse@db.internal/gatehouse' });
 * try {
 *   await stores.sessions.create(record, { max: 5 }, clock.now());
 *   stores.bus?.subscribe((message) => log.info(message, 'cluster message'));
 * } finally {
 *   await stores.close();
 * }
 * ```
 */
export async function createPostgresStores(options: PostgresStoresOptions): Promise<Stores> {
  const schema = options.schema ?? 'gatehouse';
  checkSchema(schema);
  const owned = 'url' in options;
  const pool = owned ? createPool(options.url, options.max ?? DEFAULT_POOL_SIZE) : options.pool;
  // An idle connection that fails (the server restarted) is dropped by the pool, which then emits 'error':
  // without a listener that would crash the process. The next statement on a new connection tells the
  // caller whether the server is back.
  const ignoreIdleError = (): void => {};
  pool.on('error', ignoreIdleError);

  let closed = false;
  const ctx = createPostgresContext(pool, schema, () => closed);
  const bus = createPostgresBus(ctx, dedicatedConnectionConfig(pool));
  const limits = createPostgresRateLimits(ctx);
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      closed = true;
      limits.stop();
      await bus.close();
      if (owned) await pool.end().catch(() => undefined);
      else pool.off('error', ignoreIdleError);
    })();
    return closing;
  };

  try {
    if (options.migrate !== false) await migratePostgres(pool, schema);
    await bus.start();
  } catch (error) {
    await close();
    throw storeError(error);
  }

  return {
    kind: 'postgres',
    sessions: createPostgresSessionStore(ctx),
    users: createPostgresUserStore(ctx),
    clients: createPostgresClientStore(ctx),
    codes: createPostgresAuthorizationCodeStore(ctx),
    grants: createPostgresGrantStore(ctx),
    revocations: createPostgresRevocationStore(ctx),
    consents: createPostgresConsentStore(ctx),
    upstreamTokens: createPostgresUpstreamTokenStore(ctx),
    signingKeys: createPostgresSigningKeyStore(ctx),
    ephemeral: createPostgresEphemeralStore(ctx),
    counters: createPostgresCounterStore(ctx),
    audit: createPostgresAuditStore(ctx),
    rateLimiter: limits.rateLimiter,
    bus,
    close,
  };
}
