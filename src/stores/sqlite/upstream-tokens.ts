import type Database from 'better-sqlite3';
import type { UpstreamTokenStore } from '../ports.js';
import { toUpstreamTokenRecord, type UpstreamTokenRow } from '../sql-rows.js';
import { prepare } from './prepare.js';
import { guarded } from './store-error.js';

interface UpstreamTokenParams {
  principalKey: string;
  provider: string;
  ciphertext: string;
  accessExpiresAt: number | null;
  updatedAt: number;
  expectedVersion: number;
}

export function createSqliteUpstreamTokenStore(db: Database.Database): UpstreamTokenStore {
  const selectOne = prepare<{ principalKey: string; provider: string }, UpstreamTokenRow>(
    db,
    'SELECT * FROM upstream_tokens WHERE principal_key = @principalKey AND provider = @provider',
  );
  // Each write is one statement whose WHERE (or conflict clause) is the compare of the compare-and-swap.
  const insertFirst = prepare<Omit<UpstreamTokenParams, 'expectedVersion'>, UpstreamTokenRow>(
    db,
    `INSERT INTO upstream_tokens (principal_key, provider, ciphertext, access_expires_at, updated_at, version)
     VALUES (@principalKey, @provider, @ciphertext, @accessExpiresAt, @updatedAt, 1)
     ON CONFLICT (principal_key, provider) DO NOTHING
     RETURNING *`,
  );
  const replace = prepare<UpstreamTokenParams, UpstreamTokenRow>(
    db,
    `UPDATE upstream_tokens SET ciphertext = @ciphertext, access_expires_at = @accessExpiresAt,
       updated_at = @updatedAt, version = version + 1
     WHERE principal_key = @principalKey AND provider = @provider AND version = @expectedVersion
     RETURNING *`,
  );
  const deleteOne = prepare<{ principalKey: string; provider: string }>(
    db,
    'DELETE FROM upstream_tokens WHERE principal_key = @principalKey AND provider = @provider',
  );

  return {
    get: (principalKey, provider) =>
      guarded(() => {
        const row = selectOne.get({ principalKey, provider });
        return row === undefined ? undefined : toUpstreamTokenRecord(row);
      }),
    put: (record, expectedVersion) =>
      guarded(() => {
        const params = {
          principalKey: record.principalKey,
          provider: record.provider,
          ciphertext: record.ciphertext,
          accessExpiresAt: record.accessExpiresAt ?? null,
          updatedAt: record.updatedAt,
        };
        const row =
          expectedVersion === 0 ? insertFirst.get(params) : replace.get({ ...params, expectedVersion });
        return row === undefined ? undefined : toUpstreamTokenRecord(row);
      }),
    delete: (principalKey, provider) =>
      guarded(() => deleteOne.run({ principalKey, provider }).changes === 1),
  };
}
