import type Database from 'better-sqlite3';
import type { ClientRecord, ClientStore, TokenEndpointAuthMethod } from '../ports.js';
import { prepare } from './prepare.js';
import { optionalField, parseJson } from './rows.js';
import { guarded } from './store-error.js';

interface ClientRow {
  client_id: string;
  secret_hash: string | null;
  token_endpoint_auth_method: string;
  redirect_uris: string;
  grant_types: string;
  response_types: string;
  application_type: string;
  client_name: string | null;
  client_uri: string | null;
  logo_uri: string | null;
  scope: string | null;
  metadata: string;
  created_at: number;
  expires_at: number | null;
}

function toRecord(row: ClientRow): ClientRecord {
  return {
    clientId: row.client_id,
    ...optionalField('secretHash', row.secret_hash),
    tokenEndpointAuthMethod: row.token_endpoint_auth_method as TokenEndpointAuthMethod,
    redirectUris: parseJson<string[]>(row.redirect_uris),
    grantTypes: parseJson<string[]>(row.grant_types),
    responseTypes: parseJson<string[]>(row.response_types),
    applicationType: row.application_type as ClientRecord['applicationType'],
    ...optionalField('clientName', row.client_name),
    ...optionalField('clientUri', row.client_uri),
    ...optionalField('logoUri', row.logo_uri),
    ...optionalField('scope', row.scope),
    metadata: parseJson<Record<string, unknown>>(row.metadata),
    createdAt: row.created_at,
    ...optionalField('expiresAt', row.expires_at),
  };
}

export function createSqliteClientStore(db: Database.Database): ClientStore {
  const insert = prepare<Record<string, unknown>>(
    db,
    `INSERT INTO clients (client_id, secret_hash, token_endpoint_auth_method, redirect_uris, grant_types,
       response_types, application_type, client_name, client_uri, logo_uri, scope, metadata, created_at,
       expires_at)
     VALUES (@clientId, @secretHash, @tokenEndpointAuthMethod, @redirectUris, @grantTypes, @responseTypes,
       @applicationType, @clientName, @clientUri, @logoUri, @scope, @metadata, @createdAt, @expiresAt)
     ON CONFLICT (client_id) DO NOTHING`,
  );
  const selectLive = prepare<{ clientId: string; now: number }, ClientRow>(
    db,
    'SELECT * FROM clients WHERE client_id = @clientId AND (expires_at IS NULL OR expires_at > @now)',
  );
  const deleteById = prepare<{ clientId: string }>(db, 'DELETE FROM clients WHERE client_id = @clientId');

  return {
    create: (client) =>
      guarded(
        () =>
          insert.run({
            clientId: client.clientId,
            secretHash: client.secretHash ?? null,
            tokenEndpointAuthMethod: client.tokenEndpointAuthMethod,
            redirectUris: JSON.stringify(client.redirectUris),
            grantTypes: JSON.stringify(client.grantTypes),
            responseTypes: JSON.stringify(client.responseTypes),
            applicationType: client.applicationType,
            clientName: client.clientName ?? null,
            clientUri: client.clientUri ?? null,
            logoUri: client.logoUri ?? null,
            scope: client.scope ?? null,
            metadata: JSON.stringify(client.metadata),
            createdAt: client.createdAt,
            expiresAt: client.expiresAt ?? null,
          }).changes === 1,
      ),
    get: (clientId, now) =>
      guarded(() => {
        const row = selectLive.get({ clientId, now });
        return row === undefined ? undefined : toRecord(row);
      }),
    delete: (clientId) => guarded(() => deleteById.run({ clientId }).changes === 1),
  };
}
