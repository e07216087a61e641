import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSqliteStores } from '../../../src/stores/sqlite/index.js';
import { SQLITE_MIGRATIONS } from '../../../src/stores/sqlite/migrations.js';

// Several OS processes on one file: the only setting in which BEGIN IMMEDIATE is what keeps the cap and
// the sweeper exact (in one process better-sqlite3 runs every call to completion anyway).

const WORKER = fileURLToPath(new URL('./fixtures/sqlite-session-worker.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const T0 = Date.UTC(2026, 0, 1);
const WORKERS = 4;

interface Worker {
  readonly child: ChildProcessWithoutNullStreams;
  readonly ready: Promise<void>;
  readonly result: Promise<unknown>;
}

function startWorker(args: readonly string[]): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], { cwd: REPO_ROOT });
  let stdout = '';
  let stderr = '';
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (stdout.startsWith('ready\n')) markReady();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const result = new Promise<unknown>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      if (code === 0 && last !== 'ready') resolve(JSON.parse(last));
      else reject(new Error(`worker exited with ${code}: ${stderr}`));
    });
  });
  // A worker that dies before `ready` must fail the test rather than hang it.
  return { child, ready: Promise.race([ready, result.then(() => undefined)]), result };
}

async function runTogether(argsPerWorker: readonly (readonly string[])[]): Promise<unknown[]> {
  const workers = argsPerWorker.map(startWorker);
  await Promise.all(workers.map((worker) => worker.ready));
  for (const worker of workers) worker.child.stdin.end('go\n');
  return Promise.all(workers.map((worker) => worker.result));
}

describe('SQLite sessions across processes', () => {
  let dir: string;
  let path: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gatehouse-xproc-'));
    path = join(dir, 'gatehouse.db');
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('opens a new file from several processes at once and admits exactly the cap per principal', async () => {
    const principals = 200;

    const results = (await runTogether(
      Array.from({ length: WORKERS }, (_, w) => [
        'create',
        path,
        `w${w}`,
        String(principals),
        '2',
        '3',
        String(T0),
      ]),
    )) as { created: Record<string, string[]> }[];

    const stores = createSqliteStores({ path });
    try {
      for (let p = 0; p < principals; p += 1) {
        const principalKey = `https://idp.example.test/#user-${p}`;
        const created = results.flatMap((result) => result.created[principalKey] ?? []).sort();
        expect(created, principalKey).toHaveLength(3);
        const listed = (await stores.sessions.listByPrincipal(principalKey, T0)).map((r) => r.id).sort();
        expect(listed, principalKey).toEqual(created);
      }
    } finally {
      await stores.close();
    }
    const db = new Database(path, { readonly: true });
    try {
      expect(db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all()).toEqual(
        SQLITE_MIGRATIONS.map((migration) => migration.version),
      );
    } finally {
      db.close();
    }
  });

  it('never hands one expired session to two sweeping processes', async () => {
    const now = T0 + 3_600_000;
    const expired: string[] = [];
    const stores = createSqliteStores({ path });
    try {
      for (let i = 0; i < 200; i += 1) {
        const id = `sess-${String(i).padStart(3, '0')}`;
        expired.push(id);
        await stores.sessions.create(
          {
            id,
            principalKey: `https://idp.example.test/#user-${i % 7}`,
            kind: 'streamable-http',
            createdAt: T0,
            lastSeenAt: T0,
            idleTimeoutMs: 60_000,
            idleExpiresAt: T0 + 60_000,
            absoluteExpiresAt: T0 + 28_800_000,
            version: 1,
            data: { i },
          },
          { max: 1_000 },
          T0,
        );
      }
    } finally {
      await stores.close();
    }

    const results = (await runTogether(
      Array.from({ length: WORKERS }, () => ['sweep', path, String(now), '7']),
    )) as { removed: string[] }[];

    const removed = results.flatMap((result) => result.removed);
    expect(new Set(removed).size).toBe(removed.length);
    expect(removed.sort()).toEqual(expired);
  });

  it('leaves at most the cap and hands each evicted session to one process when evicting creates race', async () => {
    const cap = 3;
    // The file exists first: racing first opens is the test above, and this one is about eviction.
    await createSqliteStores({ path }).close();

    const results = (await runTogether(
      Array.from({ length: WORKERS }, (_, w) => ['evict', path, `w${w}`, '40', String(cap), String(T0)]),
    )) as { created: string[]; evicted: string[] }[];

    const created = results.flatMap((result) => result.created);
    const evicted = results.flatMap((result) => result.evicted);
    expect(created).toHaveLength(WORKERS * 40);
    expect(new Set(evicted).size).toBe(evicted.length);
    const stores = createSqliteStores({ path });
    try {
      const live = (await stores.sessions.listByPrincipal('https://idp.example.test/#shared', T0)).map(
        (record) => record.id,
      );
      expect(live).toHaveLength(cap);
      expect([...live, ...evicted].sort()).toEqual(created.sort());
    } finally {
      await stores.close();
    }
  });
});
