import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { assertProductionReady } from '../../../src/config/production.js';
import { configSchema, type GatehouseConfigInput } from '../../../src/config/schema.js';
import { gatewayUrls } from '../../../src/config/urls.js';
import { type DoctorCheck, type DoctorReport, runDoctor } from '../../../src/doctor/doctor.js';
import { isGatehouseError } from '../../../src/errors/gatehouse-error.js';
import { systemClock } from '../../../src/ops/clock.js';
import { openStores } from '../../../src/stores/open.js';
import { DEVELOPMENT_TOKEN_CLAIM } from '../../../src/tokens/local-verifier.js';
import { openDeploymentKeys } from '../../../src/tokens/open-keys.js';
import { createTokenSigner } from '../../../src/tokens/sign.js';

/*
 * The doctor and production start-up judge a deployment with one function: whatever `gatehouse doctor`
 * fails in production mode, `assertProductionReady` (called by createGateway) refuses, and the reverse.
 * The deployment is a real data directory, initialised the way the gateway does it.
 */

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const fn of cleanup.splice(0)) fn();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-doctor-prod-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function config(dataDir: string, extra: GatehouseConfigInput = {}) {
  return configSchema.parse({
    mode: 'production',
    dataDir,
    server: { publicUrl: 'https://mcp.example.com' },
    ...extra,
  });
}

/** A data directory as `gatehouse serve` leaves it: database, secret key and a signing key. */
async function deployment(): Promise<{
  dataDir: string;
  sign: (claims: Record<string, unknown>) => Promise<string>;
}> {
  const dataDir = join(tempDir(), 'data');
  const deployed = config(dataDir);
  const stores = await openStores(deployed);
  const urls = gatewayUrls(deployed);
  const { keys } = await openDeploymentKeys(deployed, stores, systemClock);
  const signer = createTokenSigner({ keys, issuer: urls.issuer, clock: systemClock });
  await stores.close();
  return {
    dataDir,
    sign: (claims) =>
      signer.sign({ subject: 'alice', audience: urls.resource, expiresInSeconds: 300, claims }),
  };
}

function check(report: DoctorReport, id: string): DoctorCheck | undefined {
  return report.checks.find((candidate) => candidate.id === id);
}

function refusedCodes(dataDir: string): string[] {
  try {
    assertProductionReady(config(dataDir));
  } catch (error) {
    if (!isGatehouseError(error, 'ERR_CONFIG_INVALID')) throw error;
    return ((error.details?.issues ?? []) as Array<{ code: string }>).map((issue) => issue.code);
  }
  return [];
}

describe('gatehouse doctor fails what production start-up refuses, and nothing else', () => {
  it.each<[string, { dir?: number; key?: number; db?: number }, string[], string]>([
    ['private files', {}, [], 'ok'],
    ['a secret key others may read', { key: 0o644 }, ['secret_key_exposed'], 'secretKey'],
    ['a data directory others may write', { dir: 0o777 }, ['data_dir_writable'], 'store'],
    ['a database the group may write', { db: 0o660 }, ['store_writable'], 'store'],
    ['a data directory and database others may only read', { dir: 0o755, db: 0o644 }, [], 'ok'],
  ])('%s', async (_name, modes, refusals, failing) => {
    const { dataDir } = await deployment();
    chmodSync(join(dataDir, 'secret.key'), modes.key ?? 0o600);
    chmodSync(join(dataDir, 'gatehouse.db'), modes.db ?? 0o600);
    chmodSync(dataDir, modes.dir ?? 0o700);
    cleanup.unshift(() => chmodSync(dataDir, 0o700));

    expect(refusedCodes(dataDir)).toEqual(refusals);
    const report = await runDoctor(config(dataDir));
    expect(report.ok).toBe(refusals.length === 0);
    const production = check(report, 'production');
    expect(production?.status).toBe(refusals.length === 0 ? 'ok' : 'fail');
    expect(
      ((production?.details?.issues ?? []) as Array<{ code: string }>).map((issue) => issue.code),
    ).toEqual(refusals);
    if (failing !== 'ok') expect(check(report, failing)?.status).toBe('fail');
  });

  it('fails a development token in production mode as the gateway refuses it, and passes it in development', async () => {
    const { dataDir, sign } = await deployment();
    const devToken = await sign({ [DEVELOPMENT_TOKEN_CLAIM]: true });

    const production = await runDoctor(config(dataDir), { token: devToken });
    expect(check(production, 'token')).toMatchObject({
      status: 'fail',
      details: { reason: 'development_token', sub: 'alice' },
    });
    expect(check(await runDoctor(config(dataDir), { token: await sign({}) }), 'token')?.status).toBe('ok');
    const development = await runDoctor(config(dataDir, { mode: 'development' }), { token: devToken });
    expect(check(development, 'token')?.status).toBe('ok');
  });

  it('warns loudly of development mode under NODE_ENV=production, and only then', async () => {
    const { dataDir } = await deployment();
    const development = config(dataDir, { mode: 'development' });
    const loud = await runDoctor(development, { env: { NODE_ENV: 'production' } });
    expect(check(loud, 'mode')).toMatchObject({
      status: 'warn',
      details: { reason: 'development_under_node_env_production' },
    });
    expect(check(await runDoctor(development, { env: {} }), 'mode')).toBeUndefined();
    expect(
      check(await runDoctor(config(dataDir), { env: { NODE_ENV: 'production' } }), 'mode'),
    ).toBeUndefined();
  });

  it('creates nothing: no data directory, database or secret key where there was none', async () => {
    const dataDir = join(tempDir(), 'never-served');
    const report = await runDoctor(config(dataDir));
    expect(check(report, 'store')?.status).toBe('warn');
    expect(check(report, 'secretKey')?.status).toBe('warn');
    expect(existsSync(dataDir)).toBe(false);
  });
});
