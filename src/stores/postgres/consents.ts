import type { ConsentStore } from '../ports.js';
import { type ConsentRow, consentRowMapper } from '../sql-rows.js';
import type { PostgresContext } from './context.js';
import { parsedJson } from './rows.js';

const toRecord = consentRowMapper(parsedJson);

export function createPostgresConsentStore(ctx: PostgresContext): ConsentStore {
  const { consents } = ctx.tables;

  return {
    async put(record) {
      await ctx.query(
        `INSERT INTO ${consents} (principal_key, client_id, scopes, granted_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (principal_key, client_id) DO UPDATE SET
           scopes = excluded.scopes, granted_at = excluded.granted_at, expires_at = excluded.expires_at`,
        [
          record.principalKey,
          record.clientId,
          JSON.stringify(record.scopes),
          record.grantedAt,
          record.expiresAt,
        ],
      );
    },
    async get(principalKey, clientId, now) {
      const { rows } = await ctx.query<ConsentRow<'parsed'>>(
        `SELECT * FROM ${consents} WHERE principal_key = $1 AND client_id = $2 AND expires_at > $3`,
        [principalKey, clientId, now],
      );
      return rows[0] === undefined ? undefined : toRecord(rows[0]);
    },
    async delete(principalKey, clientId) {
      const { rowCount } = await ctx.query(
        `DELETE FROM ${consents} WHERE principal_key = $1 AND client_id = $2`,
        [principalKey, clientId],
      );
      return rowCount === 1;
    },
    async deleteByPrincipal(principalKey) {
      const { rowCount } = await ctx.query(`DELETE FROM ${consents} WHERE principal_key = $1`, [
        principalKey,
      ]);
      return rowCount ?? 0;
    },
    async listByPrincipal(principalKey, now) {
      const { rows } = await ctx.query<ConsentRow<'parsed'>>(
        `SELECT * FROM ${consents} WHERE principal_key = $1 AND expires_at > $2 ORDER BY client_id`,
        [principalKey, now],
      );
      return rows.map(toRecord);
    },
  };
}
