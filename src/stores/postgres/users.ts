import type { UserRecord, UserStore } from '../ports.js';
import { normalizeRoles } from '../roles.js';
import { type UserRow, userRowMapper } from '../sql-rows.js';
import type { PostgresContext } from './context.js';
import { parsedJson } from './rows.js';

const toUserRecord = userRowMapper(parsedJson);

export function createPostgresUserStore(ctx: PostgresContext): UserStore {
  const { users } = ctx.tables;
  const one = async (text: string, values: readonly unknown[]): Promise<UserRecord | undefined> => {
    const { rows } = await ctx.query<UserRow<'parsed'>>(text, values);
    return rows[0] === undefined ? undefined : toUserRecord(rows[0]);
  };

  return {
    // No conflict target: a taken id and a taken username both leave the row out, in one statement, also
    // when two creates race (the second waits for the first and then does nothing).
    async create(user) {
      const { rowCount } = await ctx.query(
        `INSERT INTO ${users} (id, username, email, name, password_hash, created_at, updated_at, disabled_at,
           credentials_changed_at, roles)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT DO NOTHING`,
        [
          user.id,
          user.username,
          user.email ?? null,
          user.name ?? null,
          user.passwordHash,
          user.createdAt,
          user.updatedAt,
          user.disabledAt ?? null,
          user.credentialsChangedAt,
          JSON.stringify(normalizeRoles(user.roles ?? [])),
        ],
      );
      return rowCount === 1;
    },
    get: (id) => one(`SELECT * FROM ${users} WHERE id = $1`, [id]),
    findByUsername: (username) => one(`SELECT * FROM ${users} WHERE username = $1`, [username]),
    async list() {
      const { rows } = await ctx.query<UserRow<'parsed'>>(`SELECT * FROM ${users} ORDER BY username`);
      return rows.map(toUserRecord);
    },
    async setPassword(id, passwordHash, now, expectedHash) {
      const { rowCount } = await ctx.query(
        `UPDATE ${users} SET password_hash = $2, updated_at = $3, credentials_changed_at = $3
         WHERE id = $1 AND ($4::text IS NULL OR password_hash = $4::text)`,
        [id, passwordHash, now, expectedHash ?? null],
      );
      return rowCount === 1;
    },
    async rehash(id, passwordHash, now, expectedHash) {
      const { rowCount } = await ctx.query(
        `UPDATE ${users} SET password_hash = $2, updated_at = $3 WHERE id = $1 AND password_hash = $4`,
        [id, passwordHash, now, expectedHash],
      );
      return rowCount === 1;
    },
    // `updated_at` moves only when the enabled state actually flips.
    setDisabled: (id, disabled, now) =>
      one(
        `UPDATE ${users} SET
           disabled_at = CASE WHEN $2::boolean THEN coalesce(disabled_at, $3::bigint) END,
           updated_at = CASE WHEN (disabled_at IS NOT NULL) = $2::boolean THEN updated_at ELSE $3::bigint END
         WHERE id = $1
         RETURNING *`,
        [id, disabled, now],
      ),
    setRoles: (id, roles, now) =>
      one(`UPDATE ${users} SET roles = $2, updated_at = $3 WHERE id = $1 RETURNING *`, [
        id,
        JSON.stringify(normalizeRoles(roles)),
        now,
      ]),
    signOut: (id, now) =>
      one(`UPDATE ${users} SET credentials_changed_at = $2, updated_at = $2 WHERE id = $1 RETURNING *`, [
        id,
        now,
      ]),
    async delete(id) {
      const { rowCount } = await ctx.query(`DELETE FROM ${users} WHERE id = $1`, [id]);
      return rowCount === 1;
    },
  };
}
