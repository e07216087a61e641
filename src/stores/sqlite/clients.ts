import type Database from 'better-sqlite3';
import type { ClientStore } from '../ports.js';
import { type ClientRow, clientRowMapper } from '../sql-rows.js';
import { prepare, preparePage } from './prepare.js';
import { parseJson } from './rows.js';
import { guarded } from './store-error.js';

const toRecord = clientRowMapper(parseJson);

export function createSqliteClientStore(db: Database.Database): ClientStore {
  const insert = prepare<Record<string, unknown>>(
    db,
    `INSERT INTO clients (client_id, secret_hash, token_endpoint_auth_method, redirect_uris, grant_types,
       response_types, application_type, client_name, client_uri, logo_uri, scope, metadata, created_at,
       expires_at, approved_at)
     VALUES (@clientId, @secretHash, @tokenEndpointAuthMethod, @redirectUris, @grantTypes, @responseTypes,
       @applicationType, @clientName, @clientUri, @logoUri, @scope, @metadata, @createdAt, @expiresAt,
       @approvedAt)
     ON CONFLICT (client_id) DO NOTHING`,
  );
  const selectLive = prepare<{ clientId: string; now: number }, ClientRow<'text'>>(
    db,
    'SELECT * FROM clients WHERE client_id = @clientId AND (expires_at IS NULL OR expires_at > @now)',
  );
  const selectPage = preparePage<ClientRow<'text'>>(
    db,
    'clients',
    'client_id',
    'expires_at IS NULL OR expires_at > @now',
  );
  // `approved_at` keeps the first approval; `@approved` is 1 or 0.
  const updateApproved = prepare<{ clientId: string; approved: number; now: number }, ClientRow<'text'>>(
    db,
    `UPDATE clients SET approved_at = CASE WHEN @approved THEN coalesce(approved_at, @now) END
     WHERE client_id = @clientId AND (expires_at IS NULL OR expires_at > @now)
     RETURNING *`,
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
            approvedAt: client.approvedAt ?? null,
          }).changes === 1,
      ),
    get: (clientId, now) =>
      guarded(() => {
        const row = selectLive.get({ clientId, now });
        return row === undefined ? undefined : toRecord(row);
      }),
    list: (now, page) => guarded(() => selectPage(now, page).map(toRecord)),
    setApproved: (clientId, approved, now) =>
      guarded(() => {
        const row = updateApproved.get({ clientId, approved: approved ? 1 : 0, now });
        return row === undefined ? undefined : toRecord(row);
      }),
    delete: (clientId) => guarded(() => deleteById.run({ clientId }).changes === 1),
  };
}
