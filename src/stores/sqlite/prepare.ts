import type Database from 'better-sqlite3';
import { pageLimit } from '../list-page.js';
import type { ListPage } from '../ports.js';

/**
 * Prepares a statement with named parameters that reads integers as numbers even on a connection the
 * caller set to `defaultSafeIntegers(true)`: every time and counter in the ports is a JS number.
 */
export function prepare<P extends object, R = unknown>(
  db: Database.Database,
  sql: string,
): Database.Statement<[P], R> {
  return db.prepare<[P], R>(sql).safeIntegers(false);
}

/**
 * Prepares an operator's listing of `table`: rows matching `live` (which reads `@now`), in (`created_at`,
 * `idColumn`) order, strictly after `page.after`, at most `page.limit`. Two statements rather than one with
 * `@after IS NULL OR …`, which would keep the planner from starting the index range at the cursor.
 */
export function preparePage<R>(
  db: Database.Database,
  table: string,
  idColumn: string,
  live: string,
): (now: number, page: ListPage) => R[] {
  const order = `ORDER BY created_at, ${idColumn} LIMIT @limit`;
  const first = prepare<{ now: number; limit: number }, R>(
    db,
    `SELECT * FROM ${table} WHERE (${live}) ${order}`,
  );
  const next = prepare<{ now: number; afterCreatedAt: number; afterId: string; limit: number }, R>(
    db,
    `SELECT * FROM ${table} WHERE (created_at, ${idColumn}) > (@afterCreatedAt, @afterId) AND (${live}) ${order}`,
  );
  return (now, page) => {
    const limit = pageLimit(page.limit);
    return page.after === undefined
      ? first.all({ now, limit })
      : next.all({ now, afterCreatedAt: page.after.createdAt, afterId: page.after.id, limit });
  };
}
