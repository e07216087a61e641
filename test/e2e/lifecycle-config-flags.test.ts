import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/late-server.js';
import { ACCEPT, INIT } from '../helpers/mcp-http.js';
import { startServe } from '../helpers/serve-process.js';

/** `serve`, `token` and `doctor` resolve one gateway from the same config file, environment and flags. */
describe('doctor and token follow the running server', { timeout: 120_000 }, () => {
  const cleanup: Array<() => void | Promise<void>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });
  const workDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-flags-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  };
  const audienceCheck = (stdout: string) =>
    (JSON.parse(stdout).checks as Array<{ id: string; details?: Record<string, unknown> }>).find(
      (check) => check.id === 'authorizationServer',
    )?.details;

  it('a token minted with serve’s flags is accepted by that server and verified by doctor with them', async () => {
    const dir = workDir();
    writeFileSync(
      join(dir, 'gatehouse.jsonc'),
      '{\n  // a file like the one init writes\n  "dataDir": "state",\n}\n',
    );
    const port = await freePort();
    const flags = ['--config', 'gatehouse.jsonc', '--port', String(port)];
    const running = await startServe(flags, { cwd: dir, env: cleanEnv({ GATEHOUSE_LOG__LEVEL: 'warn' }) });
    cleanup.push(async () => {
      running.child.kill('SIGTERM');
      await running.exited;
    });
    expect(running.mcpUrl).toBe(`http://127.0.0.1:${port}/mcp`);

    const minted = await runCli(['token', '--user', 'alice', ...flags], dir, cleanEnv());
    expect(minted.code).toBe(0);
    const token = minted.stdout.trim();
    expect(decodeJwt(token)).toMatchObject({ aud: running.mcpUrl, iss: `http://127.0.0.1:${port}/` });
    const response = await fetch(running.mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, accept: ACCEPT, 'content-type': 'application/json' },
      body: JSON.stringify(INIT),
    });
    expect(response.status).toBe(200);
    await response.body?.cancel();

    writeFileSync(join(dir, 'token.jwt'), token);
    const doctor = await runCli(
      [...['doctor', '--json', '--token-file', 'token.jwt'], ...flags],
      dir,
      cleanEnv(),
    );
    const report = JSON.parse(doctor.stdout);
    expect(report.checks.find((check: { id: string }) => check.id === 'token')?.status).toBe('ok');
    expect(audienceCheck(doctor.stdout)).toMatchObject({ resource: running.mcpUrl });
    // Without --port, doctor judges the token for the default port's audience, and says so.
    const elsewhere = await runCli(
      ['doctor', '--json', '--token-file', 'token.jwt', '--config', 'gatehouse.jsonc'],
      dir,
      cleanEnv(),
    );
    expect(JSON.parse(elsewhere.stdout).checks.find((c: { id: string }) => c.id === 'token')?.status).toBe(
      'fail',
    );
  });

  it('reads the port and host from the environment and --host as serve does', async () => {
    const dir = workDir();
    const env = cleanEnv({ GATEHOUSE_SERVER__PORT: '9441' });
    const token = await runCli(
      ['token', '--user', 'bob', '--data-dir', 'state', '--host', 'localhost'],
      dir,
      env,
    );
    expect(token.code).toBe(0);
    expect(decodeJwt(token.stdout.trim())).toMatchObject({
      aud: 'http://localhost:9441/mcp',
      iss: 'http://localhost:9441/',
    });
    const doctor = await runCli(['doctor', '--json', '--data-dir', 'state', '--host', 'localhost'], dir, env);
    expect(audienceCheck(doctor.stdout)).toMatchObject({
      publicUrl: 'http://localhost:9441',
      resource: 'http://localhost:9441/mcp',
    });
    // --public-url wins over both, on every command alike.
    const behindProxy = await runCli(
      ['doctor', '--json', '--data-dir', 'state', '--public-url', 'https://mcp.example.test'],
      dir,
      env,
    );
    expect(audienceCheck(behindProxy.stdout)).toMatchObject({ resource: 'https://mcp.example.test/mcp' });
  });

  it('doctor takes the upstream flags serve takes', async () => {
    const dir = workDir();
    const doctor = await runCli(
      ['doctor', '--json', '--data-dir', 'state', '--upstream-command', 'gatehouse-test-no-such-command'],
      dir,
      cleanEnv(),
    );
    const upstream = JSON.parse(doctor.stdout).checks.find(
      (check: { id: string }) => check.id === 'upstream',
    );
    expect(upstream?.status).toBe('fail');
    expect(doctor.code).toBe(1);
  });
});
