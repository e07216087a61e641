import type { GrantStore } from '../ports.js';
import { snapshotPrincipalKey } from '../principal-key.js';
import { type GrantRow, grantRowMapper, type RefreshTokenRow, toRefreshTokenRef } from '../sql-rows.js';
import { sweepLimit } from '../sweep-limit.js';
import type { PostgresContext } from './context.js';
import { revocationInsert } from './revocations.js';
import { parsedJson, queryPage, sweepStatement } from './rows.js';

const toRecord = grantRowMapper(parsedJson);

export function createPostgresGrantStore(ctx: PostgresContext): GrantStore {
  const { grants, refreshTokens } = ctx.tables;
  const addRevocations = revocationInsert(ctx.tables);

  return {
    // The grant and its first refresh token land in one statement, or neither does.
    async create(grant, refreshTokenHash) {
      const insertGrant = `INSERT INTO ${grants} (id, client_id, principal_key, principal, scopes, resource,
          auth_time, created_at, expires_at, revoked_at, generation, rotated_at, grace_response)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`;
      const values = [
        grant.id,
        grant.clientId,
        snapshotPrincipalKey(grant.principal),
        JSON.stringify(grant.principal),
        JSON.stringify(grant.scopes),
        grant.resource,
        grant.authTime,
        grant.createdAt,
        grant.expiresAt,
        grant.revokedAt ?? null,
        grant.generation,
        grant.rotatedAt,
        grant.graceResponse ?? null,
      ];
      if (refreshTokenHash === undefined) {
        await ctx.query(insertGrant, values);
        return;
      }
      await ctx.query(
        `WITH created AS (${insertGrant} RETURNING id)
         INSERT INTO ${refreshTokens} (token_hash, grant_id, generation) SELECT $14::text, id, 1 FROM created`,
        [...values, refreshTokenHash],
      );
    },
    async get(id, now) {
      const { rows } = await ctx.query<GrantRow<'parsed'>>(
        `SELECT * FROM ${grants} WHERE id = $1 AND expires_at > $2`,
        [id, now],
      );
      return rows[0] === undefined ? undefined : toRecord(rows[0]);
    },
    async findRefreshToken(tokenHash) {
      const { rows } = await ctx.query<RefreshTokenRow>(
        `SELECT grant_id, generation FROM ${refreshTokens} WHERE token_hash = $1`,
        [tokenHash],
      );
      const row = rows[0];
      return row === undefined ? undefined : toRefreshTokenRef(row);
    },
    // One statement: the generation check and the new token land together or not at all (a duplicate
    // token hash fails the whole statement). A concurrent rotation waits for the row lock, then finds the
    // generation moved and changes nothing.
    async rotate(id, expectedGeneration, newRefreshTokenHash, rotatedAt, graceResponse) {
      const { rows } = await ctx.query<GrantRow<'parsed'>>(
        `WITH rotated AS (
           UPDATE ${grants} SET generation = generation + 1, rotated_at = $3, grace_response = $4
           WHERE id = $1 AND revoked_at IS NULL AND generation = $2 AND expires_at > $3
           RETURNING *
         ), issued AS (
           INSERT INTO ${refreshTokens} (token_hash, grant_id, generation) SELECT $5::text, id, generation FROM rotated
         )
         SELECT * FROM rotated`,
        [id, expectedGeneration, rotatedAt, graceResponse ?? null, newRefreshTokenHash],
      );
      return rows[0] === undefined ? undefined : toRecord(rows[0]);
    },
    // The grant and its revocation entry commit together: no crash or failure between two writes can leave
    // a revoked grant whose access tokens are still accepted. The entry is written after the UPDATE, which
    // waits for a concurrent revocation's row lock, so the winner's entry is the one that stands.
    revoke: (id, now, revocationExpiresAt) =>
      ctx.transaction(async (tx) => {
        const { rows } = await tx.query<GrantRow<'parsed'>>(
          `UPDATE ${grants} SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING *`,
          [id, now],
        );
        await tx.query(addRevocations, ['grant', [id], now, revocationExpiresAt]);
        return rows[0] === undefined ? undefined : toRecord(rows[0]);
      }),
    revokeByPrincipal: (principalKey, now, revocationExpiresAt) =>
      ctx.transaction(async (tx) => {
        const { rows } = await tx.query<GrantRow<'parsed'>>(
          `WITH revoked AS (
             UPDATE ${grants} SET revoked_at = $2 WHERE principal_key = $1 AND revoked_at IS NULL RETURNING *
           )
           SELECT * FROM revoked ORDER BY created_at, id`,
          [principalKey, now],
        );
        if (rows.length > 0) {
          await tx.query(addRevocations, ['grant', rows.map((row) => row.id), now, revocationExpiresAt]);
        }
        return rows.map(toRecord);
      }),
    async listByPrincipal(principalKey, now) {
      const { rows } = await ctx.query<GrantRow<'parsed'>>(
        `SELECT * FROM ${grants} WHERE principal_key = $1 AND revoked_at IS NULL AND expires_at > $2
         ORDER BY created_at, id`,
        [principalKey, now],
      );
      return rows.map(toRecord);
    },
    async list(now, page) {
      const rows = await queryPage<GrantRow<'parsed'>>(ctx, grants, 'id', 'expires_at > $1', now, page);
      return rows.map(toRecord);
    },
    // The foreign key's ON DELETE CASCADE removes every refresh token of the swept grants with them.
    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      if (max === 0) return 0;
      const { rowCount } = await ctx.query(sweepStatement(grants, ['id'], 'expires_at <= $1'), [now, max]);
      return rowCount ?? 0;
    },
  };
}
