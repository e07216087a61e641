import type Database from 'better-sqlite3';
import type { SigningKeyStore } from '../ports.js';
import { type SigningKeyRow, signingKeyRowMapper } from '../sql-rows.js';
import { sweepLimit } from '../sweep-limit.js';
import { prepare } from './prepare.js';
import { parseJson } from './rows.js';
import { guarded } from './store-error.js';

const toRecord = signingKeyRowMapper(parseJson);

export function createSqliteSigningKeyStore(db: Database.Database): SigningKeyStore {
  const selectLive = prepare<{ now: number }, SigningKeyRow<'text'>>(
    db,
    'SELECT * FROM signing_keys WHERE expires_at > @now ORDER BY created_at DESC, kid',
  );
  const insert = prepare<Record<string, unknown>>(
    db,
    `INSERT INTO signing_keys (kid, alg, public_jwk, private_jwk_ciphertext, created_at, retires_at, expires_at)
     VALUES (@kid, @alg, @publicJwk, @privateJwkCiphertext, @createdAt, @retiresAt, @expiresAt)
     ON CONFLICT (kid) DO NOTHING`,
  );
  const deleteExpiredRows = prepare<{ now: number; limit: number }>(
    db,
    'DELETE FROM signing_keys WHERE kid IN (SELECT kid FROM signing_keys WHERE expires_at <= @now LIMIT @limit)',
  );

  return {
    list: (now) => guarded(() => selectLive.all({ now }).map(toRecord)),
    create: (key) =>
      guarded(
        () =>
          insert.run({
            kid: key.kid,
            alg: key.alg,
            publicJwk: JSON.stringify(key.publicJwk),
            privateJwkCiphertext: key.privateJwkCiphertext,
            createdAt: key.createdAt,
            retiresAt: key.retiresAt,
            expiresAt: key.expiresAt,
          }).changes === 1,
      ),
    deleteExpired: (now, limit) =>
      guarded(() => {
        const max = sweepLimit(limit);
        return max === 0 ? 0 : deleteExpiredRows.run({ now, limit: max }).changes;
      }),
  };
}
