import type { SigningKeyStore } from '../ports.js';
import { type SigningKeyRow, signingKeyRowMapper } from '../sql-rows.js';
import { sweepLimit } from '../sweep-limit.js';
import type { PostgresContext } from './context.js';
import { parsedJson, sweepStatement } from './rows.js';

const toRecord = signingKeyRowMapper(parsedJson);

export function createPostgresSigningKeyStore(ctx: PostgresContext): SigningKeyStore {
  const { signingKeys } = ctx.tables;

  return {
    async list(now) {
      const { rows } = await ctx.query<SigningKeyRow<'parsed'>>(
        `SELECT * FROM ${signingKeys} WHERE expires_at > $1 ORDER BY created_at DESC, kid`,
        [now],
      );
      return rows.map(toRecord);
    },
    async create(key) {
      const { rowCount } = await ctx.query(
        `INSERT INTO ${signingKeys} (kid, alg, public_jwk, private_jwk_ciphertext, created_at, retires_at,
           expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (kid) DO NOTHING`,
        [
          key.kid,
          key.alg,
          JSON.stringify(key.publicJwk),
          key.privateJwkCiphertext,
          key.createdAt,
          key.retiresAt,
          key.expiresAt,
        ],
      );
      return rowCount === 1;
    },
    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      if (max === 0) return 0;
      const { rowCount } = await ctx.query(sweepStatement(signingKeys, ['kid'], 'expires_at <= $1'), [
        now,
        max,
      ]);
      return rowCount ?? 0;
    },
  };
}
