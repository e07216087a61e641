import type Database from 'better-sqlite3';
import type { AuthorizationCodeStore, ConsumeCodeResult } from '../ports.js';
import { type CodeRow, codeRowMapper } from '../sql-rows.js';
import { sweepLimit } from '../sweep-limit.js';
import { prepare } from './prepare.js';
import { parseJson } from './rows.js';
import { guarded } from './store-error.js';

const toRecord = codeRowMapper(parseJson);

export function createSqliteAuthorizationCodeStore(db: Database.Database): AuthorizationCodeStore {
  const insert = prepare<Record<string, unknown>>(
    db,
    `INSERT INTO authorization_codes (code_hash, grant_id, client_id, redirect_uri, code_challenge, resource,
       scopes, principal, auth_time, created_at, expires_at)
     VALUES (@codeHash, @grantId, @clientId, @redirectUri, @codeChallenge, @resource, @scopes, @principal,
       @authTime, @createdAt, @expiresAt)`,
  );
  const markConsumed = prepare<{ codeHash: string; now: number }, CodeRow<'text'>>(
    db,
    `UPDATE authorization_codes SET consumed_at = @now
     WHERE code_hash = @codeHash AND expires_at > @now AND consumed_at IS NULL
     RETURNING *`,
  );
  const selectLive = prepare<{ codeHash: string; now: number }, CodeRow<'text'>>(
    db,
    'SELECT * FROM authorization_codes WHERE code_hash = @codeHash AND expires_at > @now',
  );
  const deleteExpiredRows = prepare<{ now: number; limit: number }>(
    db,
    `DELETE FROM authorization_codes WHERE code_hash IN (
       SELECT code_hash FROM authorization_codes WHERE expires_at <= @now LIMIT @limit
     )`,
  );

  // The conditional UPDATE decides who consumes; the read that tells a replay from an unknown code runs
  // under the same write lock, so no sweeper removes the row between the two.
  const consumeTx = db.transaction((codeHash: string, now: number): ConsumeCodeResult | undefined => {
    const consumed = markConsumed.get({ codeHash, now });
    if (consumed !== undefined) return { status: 'consumed', record: toRecord(consumed) };
    const seen = selectLive.get({ codeHash, now });
    return seen === undefined ? undefined : { status: 'replayed', record: toRecord(seen) };
  });

  return {
    create: (record) =>
      guarded(() => {
        insert.run({
          codeHash: record.codeHash,
          grantId: record.grantId,
          clientId: record.clientId,
          redirectUri: record.redirectUri,
          codeChallenge: record.codeChallenge,
          resource: record.resource,
          scopes: JSON.stringify(record.scopes),
          principal: JSON.stringify(record.principal),
          authTime: record.authTime,
          createdAt: record.createdAt,
          expiresAt: record.expiresAt,
        });
      }),
    consume: (codeHash, now) => guarded(() => consumeTx.immediate(codeHash, now)),
    deleteExpired: (now, limit) =>
      guarded(() => {
        const max = sweepLimit(limit);
        return max === 0 ? 0 : deleteExpiredRows.run({ now, limit: max }).changes;
      }),
  };
}
