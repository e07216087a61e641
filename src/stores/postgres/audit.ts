import type { AuditStore } from '../ports.js';
import { auditLateralSql, auditSelectSql, type BindParameter, needsTypeMerge } from '../sql-audit.js';
import { AUDIT_COLUMNS, type AuditRow, auditColumns, auditRowMapper } from '../sql-rows.js';
import { sweepLimit } from '../sweep-limit.js';
import type { PostgresContext } from './context.js';
import { parsedJson } from './rows.js';

const toEntry = auditRowMapper(parsedJson);

/** Positional parameters `$1`, `$2`, … and the values bound to them. */
function parameters(): { readonly values: (string | number)[]; readonly bind: BindParameter } {
  const values: (string | number)[] = [];
  return {
    values,
    bind: (value) => {
      values.push(value);
      return `$${values.length}`;
    },
  };
}

/**
 * The audit log in the `audit_log` table (migration 3); see `sql-audit.ts` for how each query shape is
 * read from the indexes.
 */
export function createPostgresAuditStore(ctx: PostgresContext): AuditStore {
  const { auditLog } = ctx.tables;
  const recordType = AUDIT_COLUMNS.map(
    (column) => `${column} ${column === 'at' ? 'bigint' : column === 'event' ? 'json' : 'text'}`,
  ).join(', ');

  return {
    // One statement, so the batch lands whole or not at all; the batch is one JSON parameter whatever its
    // size. Rows go in id order (duplicates of the batch dropped first): two appends of overlapping batches
    // then wait on each other's uncommitted ids in the same order, and cannot deadlock.
    async append(entries) {
      if (entries.length === 0) return;
      const byId = new Map(entries.map((entry) => [entry.id, entry] as const).reverse());
      const rows = [...byId.values()]
        .sort((a, b) => Buffer.compare(Buffer.from(a.id), Buffer.from(b.id)))
        .map((entry) => {
          const columns = auditColumns(entry);
          return {
            id: columns.id,
            at: columns.at,
            type: columns.type,
            outcome: columns.outcome,
            subject: columns.subject,
            principal: columns.principal,
            client_id: columns.clientId,
            request_id: columns.requestId,
            ip: columns.ip,
            event: entry.event,
          };
        });
      const columns = AUDIT_COLUMNS.join(', ');
      await ctx.query(
        `INSERT INTO ${auditLog} (${columns})
         SELECT ${columns} FROM json_to_recordset($1::json) AS entry(${recordType})
         ORDER BY id COLLATE "C"
         ON CONFLICT (id) DO NOTHING`,
        [JSON.stringify(rows)],
      );
    },
    async query(query) {
      const { values, bind } = parameters();
      const sql = needsTypeMerge(query)
        ? auditLateralSql(auditLog, query, bind)
        : auditSelectSql(auditLog, query, bind);
      const { rows } = await ctx.query<AuditRow<'parsed'>>(sql, values);
      return rows.map(toEntry);
    },
    async deleteBefore(before, limit) {
      const max = sweepLimit(limit);
      if (max === 0) return 0;
      // The oldest first, as the time index yields them; SKIP LOCKED splits concurrent sweeps (see
      // `sweepStatement`) so no entry is counted twice.
      const { rowCount } = await ctx.query(
        `WITH doomed AS (
           SELECT id FROM ${auditLog} WHERE at < $1 ORDER BY at, id LIMIT $2 FOR UPDATE SKIP LOCKED
         )
         DELETE FROM ${auditLog} AS swept USING doomed WHERE swept.id = doomed.id`,
        [before, max],
      );
      return rowCount ?? 0;
    },
  };
}
