import type { AuthorizationCodeStore, ConsumeCodeResult } from '../ports.js';
import { type CodeRow, codeRowMapper } from '../sql-rows.js';
import { sweepLimit } from '../sweep-limit.js';
import type { PostgresContext } from './context.js';
import { parsedJson, sweepStatement } from './rows.js';

const toRecord = codeRowMapper(parsedJson);

export function createPostgresAuthorizationCodeStore(ctx: PostgresContext): AuthorizationCodeStore {
  const { authorizationCodes: codes } = ctx.tables;

  return {
    async create(record) {
      await ctx.query(
        `INSERT INTO ${codes} (code_hash, grant_id, client_id, redirect_uri, code_challenge, resource, scopes,
           principal, auth_time, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [
          record.codeHash,
          record.grantId,
          record.clientId,
          record.redirectUri,
          record.codeChallenge,
          record.resource,
          JSON.stringify(record.scopes),
          JSON.stringify(record.principal),
          record.authTime,
          record.createdAt,
          record.expiresAt,
        ],
      );
    },
    // One statement: the conditional UPDATE decides who consumes (a concurrent consume waits for its row
    // lock, then finds it consumed); when it changed nothing, the same statement reads the live row, so the
    // caller learns "replayed" or "unknown" without a second round trip.
    async consume(codeHash, now): Promise<ConsumeCodeResult | undefined> {
      const { rows } = await ctx.query<CodeRow<'parsed'> & { first: boolean }>(
        `WITH consumed AS (
           UPDATE ${codes} SET consumed_at = $2
           WHERE code_hash = $1 AND expires_at > $2 AND consumed_at IS NULL
           RETURNING *
         )
         SELECT *, true AS first FROM consumed
         UNION ALL
         SELECT *, false AS first FROM ${codes}
         WHERE code_hash = $1 AND expires_at > $2 AND NOT EXISTS (SELECT 1 FROM consumed)`,
        [codeHash, now],
      );
      const row = rows[0];
      if (row === undefined) return undefined;
      return { status: row.first ? 'consumed' : 'replayed', record: toRecord(row) };
    },
    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      if (max === 0) return 0;
      const { rowCount } = await ctx.query(sweepStatement(codes, ['code_hash'], 'expires_at <= $1'), [
        now,
        max,
      ]);
      return rowCount ?? 0;
    },
  };
}
