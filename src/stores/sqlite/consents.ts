import type Database from 'better-sqlite3';
import type { ConsentStore } from '../ports.js';
import { type ConsentRow, consentRowMapper } from '../sql-rows.js';
import { prepare } from './prepare.js';
import { parseJson } from './rows.js';
import { guarded } from './store-error.js';

const toRecord = consentRowMapper(parseJson);

export function createSqliteConsentStore(db: Database.Database): ConsentStore {
  const upsert = prepare<Record<string, unknown>>(
    db,
    `INSERT INTO consents (principal_key, client_id, scopes, granted_at, expires_at)
     VALUES (@principalKey, @clientId, @scopes, @grantedAt, @expiresAt)
     ON CONFLICT (principal_key, client_id) DO UPDATE SET
       scopes = excluded.scopes, granted_at = excluded.granted_at, expires_at = excluded.expires_at`,
  );
  const selectLive = prepare<{ principalKey: string; clientId: string; now: number }, ConsentRow<'text'>>(
    db,
    `SELECT * FROM consents
     WHERE principal_key = @principalKey AND client_id = @clientId AND expires_at > @now`,
  );
  const deleteOne = prepare<{ principalKey: string; clientId: string }>(
    db,
    'DELETE FROM consents WHERE principal_key = @principalKey AND client_id = @clientId',
  );
  const deleteAllOf = prepare<{ principalKey: string }>(
    db,
    'DELETE FROM consents WHERE principal_key = @principalKey',
  );
  const selectByPrincipal = prepare<{ principalKey: string; now: number }, ConsentRow<'text'>>(
    db,
    `SELECT * FROM consents WHERE principal_key = @principalKey AND expires_at > @now
     ORDER BY client_id`,
  );

  return {
    put: (record) =>
      guarded(() => {
        upsert.run({
          principalKey: record.principalKey,
          clientId: record.clientId,
          scopes: JSON.stringify(record.scopes),
          grantedAt: record.grantedAt,
          expiresAt: record.expiresAt,
        });
      }),
    get: (principalKey, clientId, now) =>
      guarded(() => {
        const row = selectLive.get({ principalKey, clientId, now });
        return row === undefined ? undefined : toRecord(row);
      }),
    delete: (principalKey, clientId) =>
      guarded(() => deleteOne.run({ principalKey, clientId }).changes === 1),
    deleteByPrincipal: (principalKey) => guarded(() => deleteAllOf.run({ principalKey }).changes),
    listByPrincipal: (principalKey, now) =>
      guarded(() => selectByPrincipal.all({ principalKey, now }).map(toRecord)),
  };
}
