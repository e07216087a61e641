import type { ClientRecord, ClientStore, TokenEndpointAuthMethod } from '../ports.js';
import type { PostgresContext } from './context.js';
import { optionalField } from './rows.js';

interface ClientRow {
  client_id: string;
  secret_hash: string | null;
  token_endpoint_auth_method: string;
  redirect_uris: string[];
  grant_types: string[];
  response_types: string[];
  application_type: string;
  client_name: string | null;
  client_uri: string | null;
  logo_uri: string | null;
  scope: string | null;
  metadata: Record<string, unknown>;
  created_at: number;
  expires_at: number | null;
}

function toRecord(row: ClientRow): ClientRecord {
  return {
    clientId: row.client_id,
    ...optionalField('secretHash', row.secret_hash),
    tokenEndpointAuthMethod: row.token_endpoint_auth_method as TokenEndpointAuthMethod,
    redirectUris: row.redirect_uris,
    grantTypes: row.grant_types,
    responseTypes: row.response_types,
    applicationType: row.application_type as ClientRecord['applicationType'],
    ...optionalField('clientName', row.client_name),
    ...optionalField('clientUri', row.client_uri),
    ...optionalField('logoUri', row.logo_uri),
    ...optionalField('scope', row.scope),
    metadata: row.metadata,
    createdAt: row.created_at,
    ...optionalField('expiresAt', row.expires_at),
  };
}

export function createPostgresClientStore(ctx: PostgresContext): ClientStore {
  const { clients } = ctx.tables;

  return {
    async create(client) {
      const { rowCount } = await ctx.query(
        `INSERT INTO ${clients} (client_id, secret_hash, token_endpoint_auth_method, redirect_uris, grant_types,
           response_types, application_type, client_name, client_uri, logo_uri, scope, metadata, created_at,
           expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
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
        ],
      );
      return rowCount === 1;
    },
    async get(clientId, now) {
      const { rows } = await ctx.query<ClientRow>(
        `SELECT * FROM ${clients} WHERE client_id = $1 AND (expires_at IS NULL OR expires_at > $2)`,
        [clientId, now],
      );
      return rows[0] === undefined ? undefined : toRecord(rows[0]);
    },
    async delete(clientId) {
      const { rowCount } = await ctx.query(`DELETE FROM ${clients} WHERE client_id = $1`, [clientId]);
      return rowCount === 1;
    },
  };
}
