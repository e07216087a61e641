/**
 * The SQL of an audit query, shared by the SQLite and PostgreSQL adapters, which differ only in how a
 * statement names its parameters.
 *
 * Each index of `audit_log` ends in (`at`, `id`): (`at`, `id`) itself, (`subject`, `at`, `id`) and
 * (`type`, `at`, `id`). A query with no filter, a subject or an exact type is therefore one index range
 * read in order, in either direction, stopping at the limit. A type prefix (`oauth.token.`) names several
 * types, and no single index range yields their entries in time order; reading the whole prefix range and
 * sorting it would touch every entry of the family for a page of fifty. Instead the adapter first finds the
 * distinct types in the prefix's range by skipping through the type index (one seek per type, see
 * {@link auditTypesSql}), then merges one ordered, limited range per type ({@link auditMergeSql}): at most
 * `limit` entries per type are read.
 */
import { auditLimit, isTypePrefix } from './list-page.js';
import type { AuditQuery } from './ports.js';

/** Adds a parameter with `value` and returns how the statement names it (`@p0`, `$1`). */
export type BindParameter = (value: string | number) => string;

/**
 * The byte range of the types under `prefix` (which ends in `.`): `[prefix, prefix with its final '.'
 * raised to '/')`. In byte order every string starting with the prefix, and nothing else, lies in it.
 */
export function auditTypeRange(prefix: string): { readonly low: string; readonly high: string } {
  return { low: prefix, high: `${prefix.slice(0, -1)}/` };
}

/** Whether the adapter answers `query` by merging one range per type ({@link auditMergeSql}). */
export function needsTypeMerge(query: AuditQuery): boolean {
  // With a subject, the subject's own index range is the narrower read.
  return query.type !== undefined && isTypePrefix(query.type) && query.subject === undefined;
}

/** The conditions of every filter of `query` but its type. */
function conditionsBesideType(query: AuditQuery, bind: BindParameter): string[] {
  const conditions: string[] = [];
  if (query.subject !== undefined) conditions.push(`subject = ${bind(query.subject)}`);
  if (query.since !== undefined) conditions.push(`at >= ${bind(query.since)}`);
  if (query.until !== undefined) conditions.push(`at < ${bind(query.until)}`);
  // A row-value comparison, which both engines answer from the (at, id) order of their indexes.
  if (query.after !== undefined)
    conditions.push(`(at, id) > (${bind(query.after.at)}, ${bind(query.after.id)})`);
  return conditions;
}

function orderBy(query: AuditQuery): string {
  const direction = query.order === 'desc' ? 'DESC' : 'ASC';
  return `ORDER BY at ${direction}, id ${direction}`;
}

function where(conditions: readonly string[]): string {
  return conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')} `;
}

/**
 * `SELECT * FROM <table> …` for `query` as one index range: no filter, a subject, an exact type, or a
 * type prefix together with a subject (checked on the subject's range).
 */
export function auditSelectSql(table: string, query: AuditQuery, bind: BindParameter): string {
  const conditions = conditionsBesideType(query, bind);
  if (query.type !== undefined) {
    if (isTypePrefix(query.type)) {
      const { low, high } = auditTypeRange(query.type);
      conditions.push(`type >= ${bind(low)} AND type < ${bind(high)}`);
    } else {
      conditions.push(`type = ${bind(query.type)}`);
    }
  }
  return `SELECT * FROM ${table} ${where(conditions)}${orderBy(query)} LIMIT ${bind(auditLimit(query.limit))}`;
}

/**
 * The distinct types stored under the prefix `query.type`, found with one index seek per type (a "skip
 * scan" written as a recursive query, which neither engine does by itself), as a single `type` column.
 */
export function auditTypesSql(table: string, prefix: string, bind: BindParameter): string {
  return `${typesFound(table, prefix, bind)} SELECT type FROM found WHERE type IS NOT NULL`;
}

/** `WITH RECURSIVE found(type) AS (…)`: the skip scan of {@link auditTypesSql}, ending in one NULL row. */
function typesFound(table: string, prefix: string, bind: BindParameter): string {
  const { low, high } = auditTypeRange(prefix);
  const upper = bind(high);
  return `WITH RECURSIVE found(type) AS (
      SELECT (SELECT min(type) FROM ${table} WHERE type >= ${bind(low)} AND type < ${upper})
      UNION ALL
      SELECT (SELECT min(type) FROM ${table} WHERE type > found.type AND type < ${upper})
      FROM found WHERE found.type IS NOT NULL
    )`;
}

/**
 * `query` over the given `types` (the prefix's, from {@link auditTypesSql}; at least one): each type's
 * range read in order up to the limit, then merged and cut to the limit.
 */
export function auditMergeSql(
  table: string,
  query: AuditQuery,
  types: readonly string[],
  bind: BindParameter,
): string {
  const limit = bind(auditLimit(query.limit));
  const parts = types.map((type, index) => {
    const conditions = [`type = ${bind(type)}`, ...conditionsBesideType(query, bind)];
    return `SELECT * FROM (SELECT * FROM ${table} ${where(conditions)}${orderBy(query)} LIMIT ${limit}) AS part${index}`;
  });
  return `SELECT * FROM (${parts.join(' UNION ALL ')}) AS merged ${orderBy(query)} LIMIT ${limit}`;
}

/**
 * {@link auditTypesSql} and {@link auditMergeSql} as one statement, for an engine with `LATERAL`
 * (PostgreSQL): each type found in the prefix's range reads its own ordered, limited range.
 */
export function auditLateralSql(table: string, query: AuditQuery, bind: BindParameter): string {
  const found = typesFound(table, query.type as string, bind);
  const limit = bind(auditLimit(query.limit));
  const conditions = ['type = found.type', ...conditionsBesideType(query, bind)];
  return `${found}
    SELECT part.* FROM found CROSS JOIN LATERAL (
      SELECT * FROM ${table} ${where(conditions)}${orderBy(query)} LIMIT ${limit}
    ) AS part
    WHERE found.type IS NOT NULL
    ${orderBy(query)} LIMIT ${limit}`;
}
