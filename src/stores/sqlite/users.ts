import type Database from 'better-sqlite3';
import type { UserStore } from '../ports.js';
import { toUserRecord, type UserRow } from '../sql-rows.js';
import { prepare } from './prepare.js';
import { guarded } from './store-error.js';

export function createSqliteUserStore(db: Database.Database): UserStore {
  // No conflict target: a taken id and a taken username both leave the row out, in one statement.
  const insert = prepare<Record<string, unknown>>(
    db,
    `INSERT INTO users (id, username, email, name, password_hash, created_at, updated_at, disabled_at,
       credentials_changed_at)
     VALUES (@id, @username, @email, @name, @passwordHash, @createdAt, @updatedAt, @disabledAt,
       @credentialsChangedAt)
     ON CONFLICT DO NOTHING`,
  );
  const selectById = prepare<{ id: string }, UserRow>(db, 'SELECT * FROM users WHERE id = @id');
  const selectByUsername = prepare<{ username: string }, UserRow>(
    db,
    'SELECT * FROM users WHERE username = @username',
  );
  const selectAll = prepare<Record<string, never>, UserRow>(db, 'SELECT * FROM users ORDER BY username');
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
  const updateDisabled = prepare<{ id: string; disabled: number; now: number }, UserRow>(
    db,
    `UPDATE users SET
       disabled_at = CASE WHEN @disabled THEN coalesce(disabled_at, @now) END,
       updated_at = CASE WHEN (disabled_at IS NOT NULL) = @disabled THEN updated_at ELSE @now END
     WHERE id = @id
     RETURNING *`,
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
          }).changes === 1,
      ),
    get: (id) =>
      guarded(() => {
        const row = selectById.get({ id });
        return row === undefined ? undefined : toUserRecord(row);
      }),
    findByUsername: (username) =>
      guarded(() => {
        const row = selectByUsername.get({ username });
        return row === undefined ? undefined : toUserRecord(row);
      }),
    list: () => guarded(() => selectAll.all({}).map(toUserRecord)),
    setPassword: (id, passwordHash, now, expectedHash) =>
      guarded(
        () => updatePassword.run({ id, passwordHash, now, expectedHash: expectedHash ?? null }).changes === 1,
      ),
    rehash: (id, passwordHash, now, expectedHash) =>
      guarded(() => updateHash.run({ id, passwordHash, now, expectedHash }).changes === 1),
    setDisabled: (id, disabled, now) =>
      guarded(() => {
        const row = updateDisabled.get({ id, disabled: disabled ? 1 : 0, now });
        return row === undefined ? undefined : toUserRecord(row);
      }),
    delete: (id) => guarded(() => deleteById.run({ id }).changes === 1),
  };
}
