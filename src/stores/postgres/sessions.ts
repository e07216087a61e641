import { GatehouseError } from '../../errors/gatehouse-error.js';
import type { CreateSessionResult, SessionStore } from '../ports.js';
import { type SessionRow, sessionRowMapper } from '../sql-rows.js';
import { sweepLimit } from '../sweep-limit.js';
import type { PostgresContext } from './context.js';
import { parsedJson, queryPage, sweepStatement } from './rows.js';
import { isUniqueViolation } from './store-error.js';

const toRecord = sessionRowMapper(parsedJson);

function conflict(): GatehouseError {
  return new GatehouseError('ERR_SESSION_CONFLICT', 'A session with this id already exists.');
}

/** Live at `$2`: both deadlines after it. */
const LIVE = 'idle_expires_at > $2 AND absolute_expires_at > $2';

export function createPostgresSessionStore(ctx: PostgresContext): SessionStore {
  const { sessions } = ctx.tables;

  return {
    // Rows that do not exist yet cannot be row-locked, so the creates of one principal queue on an advisory
    // lock of that principal (in this schema) instead: no other create can count, evict or insert for the
    // principal between this count and this insert, so N concurrent creates against a cap of K leave at
    // most K live sessions. The eviction candidates are locked FOR UPDATE before they are deleted, so each
    // evicted row is deleted, and returned, by this call alone even when a sweep or an owner's delete races.
    async create(record, limit, now) {
      const { principalKey } = record;
      try {
        return await ctx.transaction(async (tx): Promise<CreateSessionResult> => {
          await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
            JSON.stringify(['gatehouse.sessions', ctx.schema, principalKey]),
          ]);
          const taken = await tx.query(`SELECT 1 FROM ${sessions} WHERE id = $1`, [record.id]);
          if (taken.rowCount !== 0) throw conflict();
          const counted = await tx.query<{ count: number }>(
            `SELECT count(*) AS count FROM ${sessions} WHERE principal_key = $1 AND ${LIVE}`,
            [principalKey, now],
          );
          const activeCount = counted.rows[0]?.count ?? 0;
          let evicted: SessionRow<'parsed'>[] = [];
          if (activeCount >= limit.max) {
            const needed = activeCount - limit.max + 1;
            const kinds = limit.evictKinds ?? [];
            if (kinds.length === 0) return { created: false, activeCount };
            const candidates = await tx.query<SessionRow<'parsed'>>(
              `SELECT * FROM ${sessions}
               WHERE principal_key = $1 AND ${LIVE} AND kind = ANY ($3::text[])
               ORDER BY last_seen_at, created_at, id
               LIMIT $4
               FOR UPDATE`,
              [principalKey, now, kinds, needed],
            );
            if (candidates.rows.length < needed) return { created: false, activeCount };
            evicted = candidates.rows;
            await tx.query(`DELETE FROM ${sessions} WHERE id = ANY ($1::text[])`, [
              evicted.map((row) => row.id),
            ]);
          }
          await tx.query(
            `INSERT INTO ${sessions} (id, principal_key, kind, created_at, last_seen_at, idle_timeout_ms,
               idle_expires_at, absolute_expires_at, version, data)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
            [
              record.id,
              principalKey,
              record.kind,
              record.createdAt,
              record.lastSeenAt,
              record.idleTimeoutMs,
              record.idleExpiresAt,
              record.absoluteExpiresAt,
              record.version,
              JSON.stringify(record.data),
            ],
          );
          return { created: true, activeCount, evicted: evicted.map(toRecord) };
        });
      } catch (error) {
        // Another principal's create inserted the same id after the check (the two hold different locks).
        if (isUniqueViolation(error, 'sessions_pkey')) throw conflict();
        throw error;
      }
    },

    async get(id, now) {
      const { rows } = await ctx.query<SessionRow<'parsed'>>(
        `SELECT * FROM ${sessions} WHERE id = $1 AND ${LIVE}`,
        [id, now],
      );
      return rows[0] === undefined ? undefined : toRecord(rows[0]);
    },

    // On the right of SET, columns hold their values from before the update, so the deadline uses the given
    // timeout or, when none is given (NULL), the stored one.
    async touch(id, principalKey, now, idleTimeoutMs) {
      const { rows } = await ctx.query<SessionRow<'parsed'>>(
        `UPDATE ${sessions} SET
           last_seen_at = $2,
           idle_timeout_ms = coalesce($4::bigint, idle_timeout_ms),
           idle_expires_at = least($2 + coalesce($4::bigint, idle_timeout_ms), absolute_expires_at)
         WHERE id = $1 AND principal_key = $3 AND ${LIVE}
         RETURNING *`,
        [id, now, principalKey, idleTimeoutMs ?? null],
      );
      return rows[0] === undefined ? undefined : toRecord(rows[0]);
    },

    async update(id, expectedVersion, data) {
      const { rows } = await ctx.query<SessionRow<'parsed'>>(
        `UPDATE ${sessions} SET data = $3, version = version + 1
         WHERE id = $1 AND version = $2
         RETURNING *`,
        [id, expectedVersion, JSON.stringify(data)],
      );
      return rows[0] === undefined ? undefined : toRecord(rows[0]);
    },

    async delete(id) {
      const { rowCount } = await ctx.query(`DELETE FROM ${sessions} WHERE id = $1`, [id]);
      return rowCount === 1;
    },

    async deleteOwned(id, principalKey) {
      const { rows } = await ctx.query<SessionRow<'parsed'>>(
        `DELETE FROM ${sessions} WHERE id = $1 AND principal_key = $2 RETURNING *`,
        [id, principalKey],
      );
      return rows[0] === undefined ? undefined : toRecord(rows[0]);
    },

    async deleteByPrincipal(principalKey) {
      const { rows } = await ctx.query<SessionRow<'parsed'>>(
        `WITH deleted AS (DELETE FROM ${sessions} WHERE principal_key = $1 RETURNING *)
         SELECT * FROM deleted ORDER BY created_at, id`,
        [principalKey],
      );
      return rows.map(toRecord);
    },

    async listByPrincipal(principalKey, now) {
      const { rows } = await ctx.query<SessionRow<'parsed'>>(
        `SELECT * FROM ${sessions} WHERE principal_key = $1 AND ${LIVE} ORDER BY created_at, id`,
        [principalKey, now],
      );
      return rows.map(toRecord);
    },

    async list(now, page) {
      const live = 'idle_expires_at > $1 AND absolute_expires_at > $1';
      const rows = await queryPage<SessionRow<'parsed'>>(ctx, sessions, 'id', live, now, page);
      return rows.map(toRecord);
    },
    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      if (max === 0) return [];
      const { rows } = await ctx.query<SessionRow<'parsed'>>(
        sweepStatement(
          sessions,
          ['id'],
          'idle_expires_at <= $1 OR absolute_expires_at <= $1',
          'RETURNING swept.*',
        ),
        [now, max],
      );
      return rows.map(toRecord);
    },
  };
}
