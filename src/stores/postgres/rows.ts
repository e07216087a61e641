import type { QueryResultRow } from 'pg';
import { pageLimit } from '../list-page.js';
import type { ListPage } from '../ports.js';
import type { JsonReader } from '../sql-rows.js';
import type { Queryable } from './context.js';

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

/**
 * One page of an operator's listing of `table`: rows matching `live` (which reads `$1`, the time `now`), in
 * (`created_at`, `idColumn`) order, strictly after `page.after`, at most `page.limit`. Two statements
 * rather than one with `$3 IS NULL OR …`, which would keep the planner from starting the index range at
 * the cursor.
 */
export async function queryPage<R extends QueryResultRow>(
  db: Queryable,
  table: string,
  idColumn: string,
  live: string,
  now: number,
  page: ListPage,
): Promise<R[]> {
  const limit = pageLimit(page.limit);
  const order = `ORDER BY created_at, ${idColumn} LIMIT $2`;
  const { rows } =
    page.after === undefined
      ? await db.query<R>(`SELECT * FROM ${table} WHERE (${live}) ${order}`, [now, limit])
      : await db.query<R>(
          `SELECT * FROM ${table} WHERE (created_at, ${idColumn}) > ($3, $4) AND (${live}) ${order}`,
          [now, limit, page.after.createdAt, page.after.id],
        );
  return rows;
}
