import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import { describeSecret } from '../../../src/crypto/fingerprint.js';
import { SECRET_KEY_FILE } from '../../../src/crypto/secret-key.js';
import { type DoctorCheck, type DoctorReport, runDoctor } from '../../../src/doctor/doctor.js';
import { createSqliteStores } from '../../../src/stores/sqlite/index.js';

/*
 * File permissions of what the doctor finds on disk: the generated secret key (fails in production,
 * warns in development when group or others may open it) and the SQLite database and data directory
 * (warn). Modes are set with chmod after writing, so the test machine's umask plays no part.
 */

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const fn of cleanup.splice(0)) fn();
});

interface Deployment {
  readonly dataDir: string;
  readonly keyFile: string;
  readonly dbFile: string;
  /** The secret key as written to the file; must never appear in a report. */
  readonly secretKey: string;
}

async function deployment(modes: { dir?: number; key?: number; db?: number } = {}): Promise<Deployment> {
  const root = mkdtempSync(join(tmpdir(), 'gatehouse-doctor-perms-'));
  cleanup.push(() => rmSync(root, { recursive: true, force: true }));
  const dataDir = join(root, 'data');
  mkdirSync(dataDir);
  const secretKey = randomBytes(32).toString('base64url');
  const keyFile = join(dataDir, SECRET_KEY_FILE);
  writeFileSync(keyFile, `${secretKey}\n`);
  const dbFile = join(dataDir, 'gatehouse.db');
  await createSqliteStores({ path: dbFile }).close();
  chmodSync(keyFile, modes.key ?? 0o600);
  chmodSync(dbFile, modes.db ?? 0o600);
  chmodSync(dataDir, modes.dir ?? 0o700);
  return { dataDir, keyFile, dbFile, secretKey };
}

function config(dataDir: string, mode: 'development' | 'production') {
  return configSchema.parse({
    mode,
    dataDir,
    store: { kind: 'sqlite' },
    // https so that production mode refuses nothing in the configuration itself.
    server: { publicUrl: 'https://mcp.example.com' },
  });
}

function check(report: DoctorReport, id: string): DoctorCheck {
  const found = report.checks.find((candidate) => candidate.id === id);
  if (found === undefined) throw new Error(`no check ${id}`);
  return found;
}

function expectNoSecret(report: DoctorReport, deployed: Deployment): void {
  const text = JSON.stringify(report);
  expect(text).not.toContain(deployed.secretKey);
  expect(text).not.toContain(Buffer.from(deployed.secretKey, 'base64url').toString('hex'));
}

describe('runDoctor: file permissions', () => {
  it('passes a 0600 secret key and database in a 0700 data directory, in production mode', async () => {
    const deployed = await deployment();
    const report = await runDoctor(config(deployed.dataDir, 'production'));

    const secretKey = check(report, 'secretKey');
    expect(secretKey.status).toBe('ok');
    expect(secretKey.details).toMatchObject({
      source: 'file',
      fileMode: '0600',
      ...describeSecret(Buffer.from(deployed.secretKey, 'base64url')),
    });
    expect(secretKey.details).not.toHaveProperty('exposedTo');
    expect(check(report, 'store')).toMatchObject({
      status: 'ok',
      details: { fileMode: '0600', dataDirMode: '0700' },
    });
    expect(check(report, 'production').status).toBe('ok');
    expect(report.ok).toBe(true);
    expectNoSecret(report, deployed);
  });

  it('fails a 0644 secret key in production mode, saying who may read it and why it matters', async () => {
    const deployed = await deployment({ key: 0o644 });
    const report = await runDoctor(config(deployed.dataDir, 'production'));

    const secretKey = check(report, 'secretKey');
    expect(secretKey.status).toBe('fail');
    expect(secretKey.details).toMatchObject({
      fileMode: '0644',
      reason: 'file_exposed',
      exposedTo: ['group', 'others'],
    });
    expect(secretKey.summary).toContain('mode 0644 opens it to group and others');
    expect(secretKey.summary).toContain('unseal the signing keys and upstream tokens');
    expect(secretKey.summary).not.toContain('a failure in production mode');
    expect(secretKey.hints).toEqual([`chmod 600 ${deployed.keyFile}`]);
    expect(report.ok).toBe(false);
    expectNoSecret(report, deployed);
  });

  it('only warns of the same secret key in development mode, and names the production verdict', async () => {
    const deployed = await deployment({ key: 0o640 });
    const report = await runDoctor(config(deployed.dataDir, 'development'));

    const secretKey = check(report, 'secretKey');
    expect(secretKey.status).toBe('warn');
    expect(secretKey.details).toMatchObject({ fileMode: '0640', exposedTo: ['group'] });
    expect(secretKey.summary).toContain('mode 0640 opens it to group,');
    expect(secretKey.summary).toContain('(a failure in production mode)');
    expect(report.ok).toBe(true);
    expectNoSecret(report, deployed);
  });

  it('warns, even in production, of a database and data directory open to others', async () => {
    const deployed = await deployment({ dir: 0o755, db: 0o644 });
    const report = await runDoctor(config(deployed.dataDir, 'production'));

    const store = check(report, 'store');
    expect(store.status).toBe('warn');
    expect(store.details).toMatchObject({
      fileMode: '0644',
      dataDirMode: '0755',
      fileExposedTo: ['group', 'others'],
      dataDirExposedTo: ['group', 'others'],
    });
    expect(store.summary).toContain(`database ${deployed.dbFile} is open to group and others (0644)`);
    expect(store.summary).toContain(`data directory ${deployed.dataDir} is open to group and others (0755)`);
    expect(store.hints).toEqual([`chmod 700 ${deployed.dataDir}`, `chmod 600 ${deployed.dbFile}`]);
    // The key itself is private, so nothing fails: the database's secrets are hashed or sealed.
    expect(check(report, 'secretKey').status).toBe('ok');
    expect(report.ok).toBe(true);
    expectNoSecret(report, deployed);
  });
});
