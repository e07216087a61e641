import { RateLimiterPostgres } from 'rate-limiter-flexible';
import type { RateLimiter, RateLimiterOptions } from '../ports.js';
import { checkRateLimiterOptions, flexibleRateLimiter } from '../rate-limiter.js';
import type { PostgresContext } from './context.js';
import { RATE_LIMITS_TABLE } from './tables.js';

/** How often the windows that ended are swept from the table, in milliseconds. */
const SWEEP_INTERVAL_MS = 5 * 60_000;
/** How long after its end a window is swept, in milliseconds (as `rate-limiter-flexible` itself does). */
const SWEEP_AFTER_MS = 60 * 60_000;
/** The most rows one sweep removes, so a sweep never holds many row locks at once. */
const SWEEP_BATCH = 1_000;

/** The limiters of one `Stores`, and the sweep of their table. */
export interface PostgresRateLimits {
  rateLimiter(options: RateLimiterOptions): RateLimiter;
  /** Stops the sweep; the limiters fail like every port once the stores are closed. */
  stop(): void;
}

/**
 * Rate limiters on the `rate_limits` table the migrations create: `rate-limiter-flexible`'s
 * `RateLimiterPostgres`, so every pool on the same schema (every instance) shares the counts through one
 * atomic upsert per `consume`.
 *
 * The library gets a client of its own making: statements go through the context (closed stores refuse,
 * `int8` is parsed per query) without the names the library gives them, since a named prepared statement
 * is per connection and two schemas on a caller's pool would give one name two texts. Its schema name is
 * passed with inner quotes doubled, because the library quotes it without escaping. The library's own
 * sweep timer is switched off (it can never be stopped); one sweep per `Stores` runs instead, from the
 * first limiter on, unreferenced so it never keeps the process alive, until `stop`.
 */
export function createPostgresRateLimits(ctx: PostgresContext): PostgresRateLimits {
  const storeClient = {
    query: (config: { text: string; values?: unknown[] }) => ctx.query(config.text, config.values),
  };
  let sweepTimer: NodeJS.Timeout | undefined;
  const sweep = (): void => {
    // A failed sweep (an outage) changes nothing; the next one catches up.
    ctx
      .query(
        `DELETE FROM ${ctx.tables.rateLimits} WHERE key IN (
           SELECT key FROM ${ctx.tables.rateLimits} WHERE expire < $1 LIMIT $2 FOR UPDATE SKIP LOCKED
         )`,
        [Date.now() - SWEEP_AFTER_MS, SWEEP_BATCH],
      )
      .catch(() => undefined);
  };

  return {
    rateLimiter(options) {
      checkRateLimiterOptions(options);
      if (sweepTimer === undefined) {
        sweepTimer = setInterval(sweep, SWEEP_INTERVAL_MS);
        sweepTimer.unref();
      }
      const limiter = new RateLimiterPostgres({
        storeClient,
        storeType: 'pool',
        schemaName: ctx.schema.replaceAll('"', '""'),
        tableName: RATE_LIMITS_TABLE,
        tableCreated: true,
        clearExpiredByTimeout: false,
        points: options.points,
        duration: options.durationSeconds,
        keyPrefix: options.keyPrefix,
      });
      return flexibleRateLimiter(limiter, 'PostgreSQL');
    },
    stop() {
      clearInterval(sweepTimer);
    },
  };
}
