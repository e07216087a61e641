import type { ClientStore } from '../ports.js';
import { type ClientRow, clientRowMapper } from '../sql-rows.js';
import type { PostgresContext } from './context.js';
import { parsedJson, queryPage } from './rows.js';

const toRecord = clientRowMapper(parsedJson);

export function createPostgresClientStore(ctx: PostgresContext): ClientStore {
  const { clients } = ctx.tables;

  return {
    async create(client) {
      const { rowCount } = await ctx.query(
        `INSERT INTO ${clients} (client_id, secret_hash, token_endpoint_auth_method, redirect_uris, grant_types,
           response_types, application_type, client_name, client_uri, logo_uri, scope, metadata, created_at,
           expires_at, approved_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (client_id) DO NOTHING`,
        [
          client.clientId,
          client.secretHash ?? null,
          client.tokenEndpointAuthMethod,
          JSON.stringify(client.redirectUris),
          JSON.stringify(client.grantTypes),
          JSON.stringify(client.responseTypes),
          client.applicationType,
          client.clientName ?? null,
          client.clientUri ?? null,
          client.logoUri ?? null,
          client.scope ?? null,
          JSON.stringify(client.metadata),
          client.createdAt,
          client.expiresAt ?? null,
          client.approvedAt ?? null,
        ],
      );
      return rowCount === 1;
    },
    async get(clientId, now) {
      const { rows } = await ctx.query<ClientRow<'parsed'>>(
        `SELECT * FROM ${clients} WHERE client_id = $1 AND (expires_at IS NULL OR expires_at > $2)`,
        [clientId, now],
      );
      return rows[0] === undefined ? undefined : toRecord(rows[0]);
    },
    async list(now, page) {
      const live = 'expires_at IS NULL OR expires_at > $1';
      const rows = await queryPage<ClientRow<'parsed'>>(ctx, clients, 'client_id', live, now, page);
      return rows.map(toRecord);
    },
    // `approved_at` keeps the first approval.
    async setApproved(clientId, approved, now) {
      const { rows } = await ctx.query<ClientRow<'parsed'>>(
        `UPDATE ${clients} SET approved_at = CASE WHEN $2::boolean THEN coalesce(approved_at, $3::bigint) END
         WHERE client_id = $1 AND (expires_at IS NULL OR expires_at > $3::bigint)
         RETURNING *`,
        [clientId, approved, now],
      );
      return rows[0] === undefined ? undefined : toRecord(rows[0]);
    },
    async delete(clientId) {
      const { rowCount } = await ctx.query(`DELETE FROM ${clients} WHERE client_id = $1`, [clientId]);
      return rowCount === 1;
    },
  };
}
