import type { UpstreamTokenStore } from '../ports.js';
import { toUpstreamTokenRecord, type UpstreamTokenRow } from '../sql-rows.js';
import type { PostgresContext } from './context.js';

export function createPostgresUpstreamTokenStore(ctx: PostgresContext): UpstreamTokenStore {
  const { upstreamTokens } = ctx.tables;

  return {
    async get(principalKey, provider) {
      const { rows } = await ctx.query<UpstreamTokenRow>(
        `SELECT * FROM ${upstreamTokens} WHERE principal_key = $1 AND provider = $2`,
        [principalKey, provider],
      );
      return rows[0] === undefined ? undefined : toUpstreamTokenRecord(rows[0]);
    },
    // Each write is one statement whose conflict clause (create) or WHERE (replace) is the compare of the
    // compare-and-swap.
    async put(record, expectedVersion) {
      const values = [
        record.principalKey,
        record.provider,
        record.ciphertext,
        record.accessExpiresAt ?? null,
        record.updatedAt,
      ];
      const { rows } =
        expectedVersion === 0
          ? await ctx.query<UpstreamTokenRow>(
              `INSERT INTO ${upstreamTokens} (principal_key, provider, ciphertext, access_expires_at, updated_at,
                 version)
               VALUES ($1, $2, $3, $4, $5, 1)
               ON CONFLICT (principal_key, provider) DO NOTHING
               RETURNING *`,
              values,
            )
          : await ctx.query<UpstreamTokenRow>(
              `UPDATE ${upstreamTokens} SET ciphertext = $3, access_expires_at = $4, updated_at = $5,
                 version = version + 1
               WHERE principal_key = $1 AND provider = $2 AND version = $6
               RETURNING *`,
              [...values, expectedVersion],
            );
      return rows[0] === undefined ? undefined : toUpstreamTokenRecord(rows[0]);
    },
    async delete(principalKey, provider) {
      const { rowCount } = await ctx.query(
        `DELETE FROM ${upstreamTokens} WHERE principal_key = $1 AND provider = $2`,
        [principalKey, provider],
      );
      return rowCount === 1;
    },
  };
}
