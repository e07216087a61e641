import type Database from 'better-sqlite3';
import type { UserStore } from '../ports.js';
import { normalizeRoles } from '../roles.js';
import { type UserRow, userRowMapper } from '../sql-rows.js';
import { prepare } from './prepare.js';
import { parseJson } from './rows.js';
import { guarded } from './store-error.js';

const toRecord = userRowMapper(parseJson);

export function createSqliteUserStore(db: Database.Database): UserStore {
  // No conflict target: a taken id and a taken username both leave the row out, in one statement.
  const insert = prepare<Record<string, unknown>>(
    db,
    `INSERT INTO users (id, username, email, name, password_hash, created_at, updated_at, disabled_at,
       credentials_changed_at, roles)
     VALUES (@id, @username, @email, @name, @passwordHash, @createdAt, @updatedAt, @disabledAt,
       @credentialsChangedAt, @roles)
     ON CONFLICT DO NOTHING`,
  );
  const selectById = prepare<{ id: string }, UserRow<'text'>>(db, 'SELECT * FROM users WHERE id = @id');
  const selectByUsername = prepare<{ username: string }, UserRow<'text'>>(
    db,
    'SELECT * FROM users WHERE username = @username',
  );
  const selectAll = prepare<Record<string, never>, UserRow<'text'>>(
    db,
    'SELECT * FROM users ORDER BY username',
  );
  const updatePassword = prepare<{
    id: string;
    passwordHash: string;
    now: number;
    expectedHash: string | null;
  }>(
    db,
    `UPDATE users SET password_hash = @passwordHash, updated_at = @now, credentials_changed_at = @now
     WHERE id = @id AND (@expectedHash IS NULL OR password_hash = @expectedHash)`,
  );
  const updateHash = prepare<{ id: string; passwordHash: string; now: number; expectedHash: string }>(
    db,
    `UPDATE users SET password_hash = @passwordHash, updated_at = @now
     WHERE id = @id AND password_hash = @expectedHash`,
  );
  // `@disabled` is 1 or 0; `updated_at` moves only when the enabled state actually flips.
  const updateDisabled = prepare<{ id: string; disabled: number; now: number }, UserRow<'text'>>(
    db,
    `UPDATE users SET
       disabled_at = CASE WHEN @disabled THEN coalesce(disabled_at, @now) END,
       updated_at = CASE WHEN (disabled_at IS NOT NULL) = @disabled THEN updated_at ELSE @now END
     WHERE id = @id
     RETURNING *`,
  );
  const updateRoles = prepare<{ id: string; roles: string; now: number }, UserRow<'text'>>(
    db,
    'UPDATE users SET roles = @roles, updated_at = @now WHERE id = @id RETURNING *',
  );
  const updateSignedOut = prepare<{ id: string; now: number }, UserRow<'text'>>(
    db,
    'UPDATE users SET credentials_changed_at = @now, updated_at = @now WHERE id = @id RETURNING *',
  );
  const deleteById = prepare<{ id: string }>(db, 'DELETE FROM users WHERE id = @id');

  return {
    create: (user) =>
      guarded(
        () =>
          insert.run({
            id: user.id,
            username: user.username,
            email: user.email ?? null,
            name: user.name ?? null,
            passwordHash: user.passwordHash,
            createdAt: user.createdAt,
            updatedAt: user.updatedAt,
            disabledAt: user.disabledAt ?? null,
            credentialsChangedAt: user.credentialsChangedAt,
            roles: JSON.stringify(normalizeRoles(user.roles ?? [])),
          }).changes === 1,
      ),
    get: (id) =>
      guarded(() => {
        const row = selectById.get({ id });
        return row === undefined ? undefined : toRecord(row);
      }),
    findByUsername: (username) =>
      guarded(() => {
        const row = selectByUsername.get({ username });
        return row === undefined ? undefined : toRecord(row);
      }),
    list: () => guarded(() => selectAll.all({}).map(toRecord)),
    setPassword: (id, passwordHash, now, expectedHash) =>
      guarded(
        () => updatePassword.run({ id, passwordHash, now, expectedHash: expectedHash ?? null }).changes === 1,
      ),
    rehash: (id, passwordHash, now, expectedHash) =>
      guarded(() => updateHash.run({ id, passwordHash, now, expectedHash }).changes === 1),
    setDisabled: (id, disabled, now) =>
      guarded(() => {
        const row = updateDisabled.get({ id, disabled: disabled ? 1 : 0, now });
        return row === undefined ? undefined : toRecord(row);
      }),
    setRoles: (id, roles, now) =>
      guarded(() => {
        const row = updateRoles.get({ id, roles: JSON.stringify(normalizeRoles(roles)), now });
        return row === undefined ? undefined : toRecord(row);
      }),
    signOut: (id, now) =>
      guarded(() => {
        const row = updateSignedOut.get({ id, now });
        return row === undefined ? undefined : toRecord(row);
      }),
    delete: (id) => guarded(() => deleteById.run({ id }).changes === 1),
  };
}
