import type Database from 'better-sqlite3';
import type { SigningKeyRecord, SigningKeyStore } from '../ports.js';
import { sweepLimit } from '../sweep-limit.js';
import { prepare } from './prepare.js';
import { parseJson } from './rows.js';
import { guarded } from './store-error.js';

interface SigningKeyRow {
  kid: string;
  alg: string;
  public_jwk: string;
  private_jwk_ciphertext: string;
  created_at: number;
  retires_at: number;
  expires_at: number;
}

function toRecord(row: SigningKeyRow): SigningKeyRecord {
  return {
    kid: row.kid,
    alg: row.alg,
    publicJwk: parseJson<Record<string, unknown>>(row.public_jwk),
    privateJwkCiphertext: row.private_jwk_ciphertext,
    createdAt: row.created_at,
    retiresAt: row.retires_at,
    expiresAt: row.expires_at,
  };
}

export function createSqliteSigningKeyStore(db: Database.Database): SigningKeyStore {
  const selectLive = prepare<{ now: number }, SigningKeyRow>(
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
