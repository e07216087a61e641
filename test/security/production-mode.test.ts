import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { GatehouseConfigInput } from '../../src/config/schema.js';
import { isGatehouseError } from '../../src/errors/gatehouse-error.js';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/late-server.js';
import { ServeRefused, startServe } from '../helpers/serve-process.js';
import { connectRaw } from '../helpers/websocket.js';
import { challengeError, type EventLog, INIT, mcpRequest, rpcOf, startRecorded } from './helpers/harness.js';

/**
 * Findings 2 and 5: what is fine on a laptop is refused in production. Development tokens (`gatehouse
 * token`, claim `gatehouse_dev`) do not open a production gateway; `NODE_ENV=production` means production;
 * published or weak HS256 secrets and a secret key file others can read stop `gatehouse serve`.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The Supabase CLI's published local JWT secret: anyone can forge tokens with it. */
const PUBLISHED_SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';
const PING = { jsonrpc: '2.0', id: 1, method: 'ping' };

describe('development tokens and production mode (finding 2)', () => {
  let dir: string;
  let port: number;
  let devToken: string;
  let gw: TestGateway | undefined;
  let log: EventLog | undefined;

  const config = (extra: Record<string, unknown> = {}) => {
    const file = join(dir, `gatehouse-${randomBytes(4).toString('hex')}.json`);
    writeFileSync(file, JSON.stringify({ dataDir: join(dir, 'data'), server: { port }, ...extra }));
    return file;
  };
  const input = (extra: GatehouseConfigInput = {}): GatehouseConfigInput => ({
    dataDir: join(dir, 'data'),
    server: { port },
    ...extra,
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-prod-'));
    port = await freePort();
    // A developer mints a token on the deployment while it is still in development mode.
    const minted = await runCli(['token', '--user', 'alice', '--config', config()], dir, cleanEnv());
    expect(minted.code).toBe(0);
    devToken = minted.stdout.trim();
  });
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('the development token is marked, and a development gateway admits it (control)', async () => {
    expect(decodeJwt(devToken)).toMatchObject({ sub: 'alice', gatehouse_dev: true });
    ({ gw } = await startRecorded(input()));
    const response = await mcpRequest(gw, devToken, PING);
    expect(response.status).toBe(400); // admitted; then ERR_SESSION_REQUIRED
    await response.text();
  });

  it('a production gateway on the same keys refuses it on every transport, with the audit event', async () => {
    ({ gw, log } = await startRecorded(input({ mode: 'production' })));
    const response = await mcpRequest(gw, devToken, INIT);
    expect(response.status).toBe(401);
    expect(challengeError(response)).toBe('invalid_token');
    await response.text();
    expect(log?.of('guard.refused')).toMatchObject([
      { error: 'invalid_token', transport: 'streamable-http' },
    ]);
    await expect(connectRaw(gw, { token: devToken })).rejects.toMatchObject({ status: 401 });
    const sse = await fetch(new URL('/sse', gw.mcpUrl), { headers: { authorization: `Bearer ${devToken}` } });
    expect(sse.status).toBe(401);
    await sse.text();
    expect(
      await gw.gateway.sessions.list(
        (await gw.gateway.verification.verify(await gw.token('alice'))).principal,
      ),
    ).toEqual([]);
    // A genuine (non-development) token of the same gateway is admitted: the refusal is the dev claim.
    const genuine = await mcpRequest(gw, await gw.token('alice'), PING);
    expect(genuine.status).toBe(400);
    expect((await rpcOf(genuine)).error?.data?.code).toBe('ERR_SESSION_REQUIRED');
  });

  it('gatehouse token is short-lived by default (at most 15 minutes)', () => {
    const { iat, exp } = decodeJwt(devToken);
    expect((exp ?? 0) - (iat ?? 0)).toBeLessThanOrEqual(900);
  });

  it('gatehouse token carries a jti, and revoking it refuses the token from that moment', async () => {
    const { jti, exp } = decodeJwt(devToken);
    expect(typeof jti).toBe('string');
    ({ gw, log } = await startRecorded(input()));
    const before = await mcpRequest(gw, devToken, PING);
    expect(before.status).toBe(400);
    await before.text();
    await gw.gateway.revocations.revoke({
      kind: 'jti',
      id: jti as string,
      revokedAt: Date.now(),
      expiresAt: (exp ?? 0) * 1000 + 60_000,
    });
    const after = await mcpRequest(gw, devToken, PING);
    expect(after.status).toBe(401);
    await after.text();
    expect(log?.of('guard.refused').at(-1)?.reason).toBe('token_revoked');
  });

  it('gatehouse token refuses to mint in production mode, and NODE_ENV=production means production', async () => {
    const production = await runCli(
      ['token', '--user', 'alice', '--config', config({ mode: 'production' })],
      dir,
      cleanEnv(),
    );
    expect(production.code).not.toBe(0);
    expect(production.stdout).toBe('');
    const nodeEnv = await runCli(
      ['token', '--user', 'alice', '--config', config()],
      dir,
      cleanEnv({ NODE_ENV: 'production' }),
    );
    expect(nodeEnv.code).not.toBe(0);
    expect(nodeEnv.stdout).toBe('');
    expect(loadConfig({ env: { NODE_ENV: 'production' } }).mode).toBe('production');
    // An explicit mode still wins over NODE_ENV.
    expect(loadConfig({ env: { NODE_ENV: 'production', GATEHOUSE_MODE: 'development' } }).mode).toBe(
      'development',
    );
  });
});

describe('production refuses published and weak secrets (finding 5)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-prod-secrets-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('a published, short-alphabet or repeated HS256 secret stops a production gateway (library)', async () => {
    for (const [secret, code] of [
      [PUBLISHED_SECRET, 'dev_secret'],
      [`your-${PUBLISHED_SECRET}`, 'dev_secret'],
      ['a'.repeat(48), 'weak_secret'],
      ['abcabcabc'.repeat(5), 'weak_secret'],
    ] as const) {
      for (const where of ['verifier', 'supabase'] as const) {
        const error = await startTestGateway({
          mode: 'production',
          dataDir: mkdtempSync(join(dir, 'lib-')),
          ...(where === 'verifier'
            ? { auth: { verifiers: [{ kind: 'hs256', name: 'supabase', secret }] } }
            : { downstream: { supabase: { issuer: 'https://ref.supabase.co/auth/v1', secret } } }),
        }).then(
          async (running) => {
            await running.close();
            return undefined;
          },
          (e: unknown) => e,
        );
        expect(isGatehouseError(error, 'ERR_CONFIG_INVALID')).toBe(true);
        const issues = (error as { details?: { issues?: Array<{ code: string }> } }).details?.issues ?? [];
        expect({ where, codes: issues.map((issue) => issue.code) }).toEqual({ where, codes: [code] });
      }
    }
  });

  it('gatehouse serve in production refuses a published secret read from a secretFile', async () => {
    const secretFile = join(dir, 'supabase-jwt');
    writeFileSync(secretFile, `${PUBLISHED_SECRET}\n`, { mode: 0o600 });
    const file = join(dir, 'published.json');
    writeFileSync(
      file,
      JSON.stringify({
        mode: 'production',
        dataDir: join(dir, 'published-data'),
        server: { port: 0 },
        auth: { verifiers: [{ kind: 'hs256', name: 'supabase', secretFile }] },
      }),
    );
    const refusal = await startServe(['--config', file], {
      cwd: dir,
      env: cleanEnv(),
      timeoutMs: 20_000,
    }).then(
      async (running) => {
        running.child.kill('SIGKILL');
        await running.exited;
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(refusal).toBeInstanceOf(ServeRefused);
    expect((refusal as ServeRefused).code).not.toBe('timeout');
    expect((refusal as ServeRefused).code).not.toBe(0);
    expect((refusal as ServeRefused).stderr).toContain('dev_secret');
  });

  it('gatehouse serve in production refuses a secret key file others can read, as doctor fails it', async () => {
    const dataDir = join(dir, 'open-key');
    mkdirSync(dataDir, { mode: 0o700 });
    const keyFile = join(dataDir, 'secret.key');
    writeFileSync(keyFile, `${randomBytes(32).toString('base64url')}\n`);
    chmodSync(keyFile, 0o644);
    const file = join(dir, 'open-key.json');
    writeFileSync(file, JSON.stringify({ mode: 'production', dataDir, server: { port: 0 } }));

    const doctor = await runCli(['doctor', '--config', file], ROOT, cleanEnv());
    expect(doctor.code).toBe(1);

    const refusal = await startServe(['--config', file], {
      cwd: dir,
      env: cleanEnv(),
      timeoutMs: 20_000,
    }).then(
      async (running) => {
        running.child.kill('SIGKILL');
        await running.exited;
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(refusal).toBeInstanceOf(ServeRefused);
    expect((refusal as ServeRefused).code).not.toBe('timeout');
    expect((refusal as ServeRefused).code).not.toBe(0);

    // Control: the very same deployment with the key at 0600 starts.
    chmodSync(keyFile, 0o600);
    const running = await startServe(['--config', file], { cwd: dir, env: cleanEnv(), timeoutMs: 20_000 });
    running.child.kill('SIGKILL');
    await running.exited;
  });

  it('NODE_ENV=production alone makes gatehouse serve refuse a development setting (memory store)', async () => {
    const file = join(dir, 'memory.json');
    writeFileSync(file, JSON.stringify({ store: { kind: 'memory' }, server: { port: 0 } }));
    const refusal = await startServe(['--config', file], {
      cwd: dir,
      env: cleanEnv({ NODE_ENV: 'production' }),
      timeoutMs: 20_000,
    }).then(
      async (running) => {
        running.child.kill('SIGKILL');
        await running.exited;
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(refusal).toBeInstanceOf(ServeRefused);
    expect((refusal as ServeRefused).stderr).toContain('memory_store');
  });
});
