import type Database from 'better-sqlite3';

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
