import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isGatehouseError } from '../../../src/errors/gatehouse-error.js';
import type { SessionRecord } from '../../../src/stores/ports.js';
import { createSqliteStores } from '../../../src/stores/sqlite/index.js';

const T0 = Date.UTC(2026, 0, 1);

function sessionRecord(id: string): SessionRecord {
  return {
    id,
    principalKey: 'https://idp.example.test/#alice',
    kind: 'websocket',
    createdAt: T0,
    lastSeenAt: T0,
    idleTimeoutMs: 1_800_000,
    idleExpiresAt: T0 + 1_800_000,
    absoluteExpiresAt: T0 + 28_800_000,
    version: 1,
    data: { step: 1 },
  };
}

describe('createSqliteStores', () => {
  let dir: string;
  let path: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gatehouse-sqlite-'));
    path = join(dir, 'gatehouse.db');
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.runIf(process.platform !== 'win32')(
    'creates the database and its WAL file readable by the owner only (password hashes, sealed keys)',
    async () => {
      const stores = createSqliteStores({ path });
      await stores.sessions.create(sessionRecord('s-mode'), { max: 10 }, T0);
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect((await stat(`${path}-wal`)).mode & 0o777).toBe(0o600);
      await stores.close();
    },
  );

  it("is kind 'sqlite'", async () => {
    const stores = createSqliteStores({ path });
    expect(stores.kind).toBe('sqlite');
    await stores.close();
  });

  it('sets WAL, a 5000 ms busy timeout, foreign keys and synchronous NORMAL', async () => {
    const db = new Database(path);
    const stores = createSqliteStores({ db });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
      expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(db.pragma('synchronous', { simple: true })).toBe(1);
    } finally {
      await stores.close();
      db.close();
    }
  });

  it('leaves a caller-owned connection open on close', async () => {
    const db = new Database(path);
    const stores = createSqliteStores({ db });
    await stores.sessions.create(sessionRecord('sess-a'), { max: 5 }, T0);

    await stores.close();

    expect(db.open).toBe(true);
    expect(db.prepare('SELECT count(*) FROM sessions').pluck().get()).toBe(1);
    db.close();
  });

  it('closes the connection it opened, and closing twice is harmless', async () => {
    const stores = createSqliteStores({ path });
    await stores.close();
    await stores.close();

    await expect(stores.sessions.get('sess-a', T0)).rejects.toThrow();
  });

  it('returns plain numbers even on a connection that defaults to BigInt', async () => {
    const db = new Database(path);
    db.defaultSafeIntegers(true);
    const stores = createSqliteStores({ db });
    try {
      const record = sessionRecord('sess-a');
      await stores.sessions.create(record, { max: 5 }, T0);
      expect(await stores.sessions.get(record.id, T0)).toEqual(record);
      expect(await stores.sessions.deleteExpired(T0 + 28_800_000, 10)).toEqual([record]);
    } finally {
      await stores.close();
      db.close();
    }
  });

  it('reports a write lock held past the busy timeout as ERR_STORE_UNAVAILABLE', async () => {
    const db = new Database(path);
    const stores = createSqliteStores({ db });
    // The stores set 5000 ms; zero shows the mapping without making the test wait.
    db.pragma('busy_timeout = 0');
    const owner = new Database(path);
    owner.prepare('BEGIN IMMEDIATE').run();
    try {
      let thrown: unknown;
      try {
        await stores.sessions.create(sessionRecord('sess-b'), { max: 5 }, T0);
      } catch (error) {
        thrown = error;
      }

      expect(isGatehouseError(thrown, 'ERR_STORE_UNAVAILABLE')).toBe(true);
      expect((thrown as Error).cause).toMatchObject({ code: 'SQLITE_BUSY' });
    } finally {
      owner.prepare('ROLLBACK').run();
      owner.close();
      await stores.close();
      db.close();
    }
  });

  it('opens a current file while another connection holds the write lock', async () => {
    await createSqliteStores({ path }).close();
    const owner = new Database(path);
    owner.prepare('BEGIN IMMEDIATE').run();
    try {
      const stores = createSqliteStores({ path });
      expect(stores.kind).toBe('sqlite');
      await stores.close();
    } finally {
      owner.prepare('ROLLBACK').run();
      owner.close();
    }
  });

  it('revokes a grant and writes its revocation entry in one transaction: both or neither', async () => {
    const db = new Database(path);
    const stores = createSqliteStores({ db });
    try {
      const principal = { subject: 'alice', idp: 'local' };
      const grant = {
        id: 'grant-a',
        clientId: 'client-a',
        principal,
        scopes: ['mcp:tools'],
        resource: 'https://mcp.example.test/mcp',
        authTime: T0,
        createdAt: T0,
        expiresAt: T0 + 86_400_000,
        generation: 0,
        rotatedAt: T0,
      };
      await stores.grants.create(grant);
      // Stands in for any failure of the second write (disk full, I/O error).
      db.exec(`CREATE TRIGGER refuse_revocations BEFORE INSERT ON revocations
               BEGIN SELECT RAISE(ABORT, 'refused'); END`);

      await expect(stores.grants.revoke(grant.id, T0 + 1, T0 + 3_600_000)).rejects.toThrow();
      await expect(stores.grants.revokeByPrincipal('local#alice', T0 + 1, T0 + 3_600_000)).rejects.toThrow();

      expect(await stores.grants.get(grant.id, T0 + 1)).toStrictEqual(grant);
    } finally {
      await stores.close();
      db.close();
    }
  });
});
