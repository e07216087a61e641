import type { AuditEntry, AuditQuery, ListPage } from './ports.js';
import { sweepLimit } from './sweep-limit.js';

/**
 * The number of records one `list(now, page)` call may return: `page.limit` rounded down, 0 for zero,
 * negative or NaN (SQL reads a negative `LIMIT` as "no limit"; the ports read it as "nothing").
 */
export function pageLimit(limit: number): number {
  return sweepLimit(limit);
}

/** The most entries one `AuditStore.query` returns, whatever `limit` asks for. */
export const AUDIT_QUERY_MAX = 1000;

/** The number of entries one audit query may return: {@link pageLimit}, capped at {@link AUDIT_QUERY_MAX}. */
export function auditLimit(limit: number): number {
  return Math.min(pageLimit(limit), AUDIT_QUERY_MAX);
}

/** Orders ids by UTF-8 bytes, the order SQLite's `BINARY` collation and PostgreSQL's `C` collation use. */
export function compareIds(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Whether `query.type` is a prefix (`oauth.token.`) rather than an exact type. */
export function isTypePrefix(type: string): boolean {
  return type.endsWith('.');
}

/**
 * Whether `entry` passes every filter of `query` (not its order or limit): the reference the memory adapter
 * applies and the Redis adapter's scan mirrors.
 */
export function matchesAuditQuery(entry: AuditEntry, query: AuditQuery): boolean {
  if (query.subject !== undefined && entry.subject !== query.subject) return false;
  if (query.type !== undefined) {
    if (isTypePrefix(query.type) ? !entry.type.startsWith(query.type) : entry.type !== query.type)
      return false;
  }
  if (query.since !== undefined && entry.at < query.since) return false;
  if (query.until !== undefined && entry.at >= query.until) return false;
  if (query.after !== undefined) {
    if (entry.at < query.after.at) return false;
    if (entry.at === query.after.at && compareIds(entry.id, query.after.id) <= 0) return false;
  }
  return true;
}

/**
 * One page of `records` in the listing order (`createdAt`, then the id `idOf` reads): those strictly after
 * `page.after`, at most `page.limit`. The memory adapter's listing; the other adapters do the same with a
 * keyset condition on their indexes.
 */
export function afterPage<T extends { readonly createdAt: number }>(
  records: readonly T[],
  page: ListPage,
  idOf: (record: T) => string,
): T[] {
  const after = page.after;
  return records
    .filter(
      (record) =>
        after === undefined ||
        record.createdAt > after.createdAt ||
        (record.createdAt === after.createdAt && compareIds(idOf(record), after.id) > 0),
    )
    .sort((a, b) => a.createdAt - b.createdAt || compareIds(idOf(a), idOf(b)))
    .slice(0, pageLimit(page.limit));
}
