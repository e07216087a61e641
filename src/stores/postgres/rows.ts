import type { JsonReader } from '../sql-rows.js';

/** Reads a `json` column, which `pg` hands back already parsed. */
export const parsedJson: JsonReader<'parsed'> = (value) => value;

/**
 * A `DELETE` of at most `$2` rows of `table` matching `expired` (which reads `$1`, the time), identified by
 * the `key` columns; `returning` may read the deleted rows as `swept`. The rows are picked with
 * `FOR UPDATE SKIP LOCKED`, so concurrent sweepers (several instances, each with its sweeper) split the
 * expired rows between them: none waits for another, and no row is deleted, or returned, twice.
 */
export function sweepStatement(
  table: string,
  key: readonly string[],
  expired: string,
  returning = '',
): string {
  const matches = key.map((column) => `swept.${column} = doomed.${column}`).join(' AND ');
  return `WITH doomed AS (
      SELECT ${key.join(', ')} FROM ${table} WHERE (${expired}) LIMIT $2 FOR UPDATE SKIP LOCKED
    )
    DELETE FROM ${table} AS swept USING doomed WHERE ${matches} ${returning}`;
}
