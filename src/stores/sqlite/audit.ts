import type Database from 'better-sqlite3';
import type { AuditEntry, AuditStore } from '../ports.js';
import {
  auditMergeSql,
  auditSelectSql,
  auditTypesSql,
  type BindParameter,
  needsTypeMerge,
} from '../sql-audit.js';
import { type AuditRow, auditColumns, auditRowMapper } from '../sql-rows.js';
import { sweepLimit } from '../sweep-limit.js';
import { prepare } from './prepare.js';
import { parseJson } from './rows.js';
import { guarded } from './store-error.js';

const toEntry = auditRowMapper(parseJson);

type Values = Record<string, string | number>;

/** Named parameters `@p0`, `@p1`, … and the values bound to them. */
function parameters(): { readonly values: Values; readonly bind: BindParameter } {
  const values: Values = {};
  let count = 0;
  return {
    values,
    bind: (value) => {
      const name = `p${count++}`;
      values[name] = value;
      return `@${name}`;
    },
  };
}

/**
 * The audit log in the `audit_log` table (migration 6); see `sql-audit.ts` for how each query shape is
 * read from the indexes. A query's statement depends on which filters it has (and, for a type prefix, on
 * how many types it covers), so each shape is prepared once and kept: there are a few dozen at most.
 */
export function createSqliteAuditStore(db: Database.Database): AuditStore {
  const insert = prepare<ReturnType<typeof auditColumns>>(
    db,
    `INSERT INTO audit_log (id, at, type, outcome, subject, principal, client_id, request_id, ip, event)
     VALUES (@id, @at, @type, @outcome, @subject, @principal, @clientId, @requestId, @ip, @event)
     ON CONFLICT (id) DO NOTHING`,
  );
  // The oldest first, through the time index; rowid is the cheapest way to name the rows to delete.
  const deleteOldest = prepare<{ before: number; limit: number }>(
    db,
    `DELETE FROM audit_log WHERE rowid IN (
       SELECT rowid FROM audit_log WHERE at < @before ORDER BY at, id LIMIT @limit
     )`,
  );
  const statements = new Map<string, Database.Statement<[Values], unknown>>();
  const run = <R>(sql: string, values: Values): R[] => {
    let statement = statements.get(sql);
    if (statement === undefined) {
      statement = prepare<Values, unknown>(db, sql);
      statements.set(sql, statement);
    }
    return statement.all(values) as R[];
  };

  // One transaction per batch: every entry of it is stored, or none.
  const appendTx = db.transaction((entries: readonly AuditEntry[]) => {
    for (const entry of entries) insert.run(auditColumns(entry));
  });
  // A read transaction, so the types found and the entries read come from one snapshot of the file.
  const mergeTx = db.transaction((query: Parameters<AuditStore['query']>[0], prefix: string) => {
    const found = parameters();
    const types = run<{ type: string }>(auditTypesSql('audit_log', prefix, found.bind), found.values);
    if (types.length === 0) return [];
    const merged = parameters();
    const sql = auditMergeSql(
      'audit_log',
      query,
      types.map((row) => row.type),
      merged.bind,
    );
    return run<AuditRow<'text'>>(sql, merged.values);
  });

  return {
    append: (entries) => guarded(() => (entries.length === 0 ? undefined : appendTx.immediate(entries))),
    query: (query) =>
      guarded(() => {
        if (needsTypeMerge(query)) return mergeTx.deferred(query, query.type as string).map(toEntry);
        const { values, bind } = parameters();
        return run<AuditRow<'text'>>(auditSelectSql('audit_log', query, bind), values).map(toEntry);
      }),
    deleteBefore: (before, limit) =>
      guarded(() => {
        const max = sweepLimit(limit);
        return max === 0 ? 0 : deleteOldest.run({ before, limit: max }).changes;
      }),
  };
}
