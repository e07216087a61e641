import type Database from 'better-sqlite3';
import type { GrantRecord, GrantStore } from '../ports.js';
import { snapshotPrincipalKey } from '../principal-key.js';
import { type GrantRow, grantRowMapper, type RefreshTokenRow, toRefreshTokenRef } from '../sql-rows.js';
import { sweepLimit } from '../sweep-limit.js';
import { prepare, preparePage } from './prepare.js';
import { prepareRevocationInsert } from './revocations.js';
import { parseJson } from './rows.js';
import { guarded } from './store-error.js';

const toRecord = grantRowMapper(parseJson);

/** The order of `listByPrincipal`, for results of statements that cannot order them (`RETURNING`). */
function byCreatedAtThenId(a: GrantRecord, b: GrantRecord): number {
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export function createSqliteGrantStore(db: Database.Database): GrantStore {
  const insertGrant = prepare<Record<string, unknown>>(
    db,
    `INSERT INTO grants (id, client_id, principal_key, principal, scopes, resource, auth_time, created_at,
       expires_at, revoked_at, generation, rotated_at, grace_response)
     VALUES (@id, @clientId, @principalKey, @principal, @scopes, @resource, @authTime, @createdAt,
       @expiresAt, @revokedAt, @generation, @rotatedAt, @graceResponse)`,
  );
  const insertToken = prepare<{ tokenHash: string; grantId: string; generation: number }>(
    db,
    'INSERT INTO refresh_tokens (token_hash, grant_id, generation) VALUES (@tokenHash, @grantId, @generation)',
  );
  const selectLive = prepare<{ id: string; now: number }, GrantRow<'text'>>(
    db,
    'SELECT * FROM grants WHERE id = @id AND expires_at > @now',
  );
  const selectToken = prepare<{ tokenHash: string }, RefreshTokenRow>(
    db,
    'SELECT grant_id, generation FROM refresh_tokens WHERE token_hash = @tokenHash',
  );
  const compareAndSwap = prepare<
    { id: string; expectedGeneration: number; rotatedAt: number; graceResponse: string | null },
    GrantRow<'text'>
  >(
    db,
    `UPDATE grants SET generation = generation + 1, rotated_at = @rotatedAt, grace_response = @graceResponse
     WHERE id = @id AND revoked_at IS NULL AND generation = @expectedGeneration AND expires_at > @rotatedAt
     RETURNING *`,
  );
  const markRevoked = prepare<{ id: string; now: number }, GrantRow<'text'>>(
    db,
    'UPDATE grants SET revoked_at = @now WHERE id = @id AND revoked_at IS NULL RETURNING *',
  );
  const markRevokedByPrincipal = prepare<{ principalKey: string; now: number }, GrantRow<'text'>>(
    db,
    `UPDATE grants SET revoked_at = @now WHERE principal_key = @principalKey AND revoked_at IS NULL
     RETURNING *`,
  );
  const addRevocation = prepareRevocationInsert(db);
  const selectByPrincipal = prepare<{ principalKey: string; now: number }, GrantRow<'text'>>(
    db,
    `SELECT * FROM grants
     WHERE principal_key = @principalKey AND revoked_at IS NULL AND expires_at > @now
     ORDER BY created_at, id`,
  );
  const selectPage = preparePage<GrantRow<'text'>>(db, 'grants', 'id', 'expires_at > @now');
  const deleteExpiredGrants = prepare<{ now: number; limit: number }, string>(
    db,
    `DELETE FROM grants WHERE id IN (SELECT id FROM grants WHERE expires_at <= @now LIMIT @limit)
     RETURNING id`,
  ).pluck();
  // The foreign key cascades too; deleting explicitly keeps the sweep correct on a connection that has
  // foreign keys switched off.
  const deleteTokensOf = prepare<{ grantIds: string }>(
    db,
    'DELETE FROM refresh_tokens WHERE grant_id IN (SELECT value FROM json_each(@grantIds))',
  );

  const createTx = db.transaction((grant: GrantRecord, refreshTokenHash: string | undefined): void => {
    insertGrant.run({
      id: grant.id,
      clientId: grant.clientId,
      principalKey: snapshotPrincipalKey(grant.principal),
      principal: JSON.stringify(grant.principal),
      scopes: JSON.stringify(grant.scopes),
      resource: grant.resource,
      authTime: grant.authTime,
      createdAt: grant.createdAt,
      expiresAt: grant.expiresAt,
      revokedAt: grant.revokedAt ?? null,
      generation: grant.generation,
      rotatedAt: grant.rotatedAt,
      graceResponse: grant.graceResponse ?? null,
    });
    if (refreshTokenHash !== undefined) {
      insertToken.run({ tokenHash: refreshTokenHash, grantId: grant.id, generation: 1 });
    }
  });
  // The generation check and the new token land together or not at all (a duplicate token hash rolls the
  // rotation back).
  const rotateTx = db.transaction(
    (
      id: string,
      expectedGeneration: number,
      newRefreshTokenHash: string,
      rotatedAt: number,
      graceResponse: string | undefined,
    ): GrantRecord | undefined => {
      const row = compareAndSwap.get({
        id,
        expectedGeneration,
        rotatedAt,
        graceResponse: graceResponse ?? null,
      });
      if (row === undefined) return undefined;
      insertToken.run({ tokenHash: newRefreshTokenHash, grantId: id, generation: row.generation });
      return toRecord(row);
    },
  );
  // The grant and its revocation entry land together: no crash or failure between two writes can leave a
  // revoked grant whose access tokens are still accepted.
  const revokeTx = db.transaction(
    (id: string, now: number, revocationExpiresAt: number): GrantRecord | undefined => {
      const row = markRevoked.get({ id, now });
      addRevocation({ kind: 'grant', id, revokedAt: now, expiresAt: revocationExpiresAt });
      return row === undefined ? undefined : toRecord(row);
    },
  );
  const revokeByPrincipalTx = db.transaction(
    (principalKey: string, now: number, revocationExpiresAt: number): GrantRecord[] => {
      const rows = markRevokedByPrincipal.all({ principalKey, now });
      for (const row of rows) {
        addRevocation({ kind: 'grant', id: row.id, revokedAt: now, expiresAt: revocationExpiresAt });
      }
      return rows.map(toRecord).sort(byCreatedAtThenId);
    },
  );
  const deleteExpiredTx = db.transaction((now: number, limit: number): number => {
    const grantIds = deleteExpiredGrants.all({ now, limit });
    if (grantIds.length > 0) deleteTokensOf.run({ grantIds: JSON.stringify(grantIds) });
    return grantIds.length;
  });

  return {
    create: (grant, refreshTokenHash) => guarded(() => createTx.immediate(grant, refreshTokenHash)),
    get: (id, now) =>
      guarded(() => {
        const row = selectLive.get({ id, now });
        return row === undefined ? undefined : toRecord(row);
      }),
    findRefreshToken: (tokenHash) =>
      guarded(() => {
        const row = selectToken.get({ tokenHash });
        return row === undefined ? undefined : toRefreshTokenRef(row);
      }),
    rotate: (id, expectedGeneration, newRefreshTokenHash, rotatedAt, graceResponse) =>
      guarded(() =>
        rotateTx.immediate(id, expectedGeneration, newRefreshTokenHash, rotatedAt, graceResponse),
      ),
    revoke: (id, now, revocationExpiresAt) => guarded(() => revokeTx.immediate(id, now, revocationExpiresAt)),
    revokeByPrincipal: (principalKey, now, revocationExpiresAt) =>
      guarded(() => revokeByPrincipalTx.immediate(principalKey, now, revocationExpiresAt)),
    listByPrincipal: (principalKey, now) =>
      guarded(() => selectByPrincipal.all({ principalKey, now }).map(toRecord)),
    list: (now, page) => guarded(() => selectPage(now, page).map(toRecord)),
    deleteExpired: (now, limit) =>
      guarded(() => {
        const max = sweepLimit(limit);
        return max === 0 ? 0 : deleteExpiredTx.immediate(now, max);
      }),
  };
}
