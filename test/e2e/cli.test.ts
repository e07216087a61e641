import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { DEV_TOKEN_DEFAULT_TTL_SECONDS, DEV_TOKEN_MAX_TTL_SECONDS } from '../../src/cli/token.js';
import { createSqliteStores } from '../../src/stores/sqlite/index.js';
import { CLI_ARGS, cleanEnv, runCli, TSX_LOADER as tsx } from '../helpers/cli.js';

const demo = fileURLToPath(new URL('../../src/demo/stdio-main.ts', import.meta.url));

const run = (args: string[], cwd: string, env: NodeJS.ProcessEnv) => runCli(args, cwd, env);

describe('gatehouse CLI', () => {
  const cleanup: Array<() => void> = [];
  afterEach(() => {
    for (const fn of cleanup.splice(0)) fn();
  });

  function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-cli-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  it('serves a stdio upstream given only --upstream-command, and mints a development token', async () => {
    const cwd = tempDir();
    const server: ChildProcess = spawn(
      process.execPath,
      [
        ...CLI_ARGS,
        'serve',
        '--port',
        '0',
        '--upstream-command',
        `"${process.execPath}" --import ${tsx} "${demo}"`,
      ],
      { cwd, env: cleanEnv({ GATEHOUSE_LOG__LEVEL: 'warn' }) },
    );
    cleanup.push(() => server.kill('SIGKILL'));
    const endpoint = await new Promise<string>((resolve, reject) => {
      let stderr = '';
      server.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const match = /MCP endpoint: +(\S+)/.exec(stderr);
        if (match?.[1] !== undefined) resolve(match[1]);
      });
      server.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
    });
    const port = new URL(endpoint).port;
    const minted = await run(['token', '--user', 'alice', '--port', port], cwd, cleanEnv());
    expect(minted.code).toBe(0);
    expect(minted.stderr).toMatch(/development token/);
    const token = minted.stdout.trim();
    const client = new Client({ name: 'cli-test', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: { token: async () => token } }),
    );
    const result = (await client.callTool({ name: 'whoami', arguments: {} })) as {
      content: Array<{ text: string }>;
    };
    expect(JSON.parse(result.content[0]?.text ?? '{}').userId).toBe('alice');
    await client.close();
    const stopped = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await stopped;
  });

  it('refuses to start on an invalid configuration and names every bad field', async () => {
    const result = await run(
      ['serve'],
      tempDir(),
      cleanEnv({
        GATEHOUSE_SERVER__PORT: 'not-a-port',
        GATEHOUSE_SESSIONS__MAX_PER_USER: '0',
      }),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('server.port');
    expect(result.stderr).toContain('sessions.maxPerUser');
  });

  it('refuses development tokens in production mode', async () => {
    const result = await run(
      ['token', '--user', 'alice'],
      tempDir(),
      cleanEnv({ GATEHOUSE_MODE: 'production' }),
    );
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/development tokens are disabled/);
  });

  it('mints short-lived development tokens with a jti, and revokes them in the store by token or jti', async () => {
    const cwd = tempDir();
    const minted = await run(['token', '--user', 'alice'], cwd, cleanEnv());
    expect(minted.code).toBe(0);
    const token = minted.stdout.trim();
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ sub: 'alice', gatehouse_dev: true, jti: expect.any(String) });
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(DEV_TOKEN_DEFAULT_TTL_SECONDS);
    expect(minted.stderr).toContain(`gatehouse token revoke ${claims.jti}`);

    const byToken = await run(['token', 'revoke', token], cwd, cleanEnv());
    expect(byToken.code).toBe(0);
    const byJti = await run(['token', 'revoke', 'some-other-jti'], cwd, cleanEnv());
    expect(byJti.code).toBe(0);

    const stores = createSqliteStores({ path: join(cwd, '.gatehouse', 'gatehouse.db') });
    try {
      const now = Date.now();
      const entries = await stores.revocations.listSince(0, now);
      const revoked = (id: unknown) => entries.find((entry) => entry.kind === 'jti' && entry.id === id);
      // Kept as long as the token lives (plus the clock tolerance), and a bare jti as long as the longest one.
      expect(revoked(claims.jti)?.expiresAt).toBeGreaterThanOrEqual((claims.exp ?? 0) * 1000);
      expect(revoked(claims.jti)?.expiresAt).toBeLessThanOrEqual((claims.exp ?? 0) * 1000 + 10_000);
      expect(revoked('some-other-jti')?.expiresAt).toBeGreaterThanOrEqual(
        now + DEV_TOKEN_MAX_TTL_SECONDS * 1000 - 60_000,
      );
    } finally {
      await stores.close();
    }
  });

  it('bounds --ttl, and refuses to mint in production mode, also when NODE_ENV=production says so', async () => {
    const cwd = tempDir();
    const tooLong = await run(
      ['token', '--user', 'alice', '--ttl', String(DEV_TOKEN_MAX_TTL_SECONDS + 1)],
      cwd,
      cleanEnv(),
    );
    expect(tooLong.code).not.toBe(0);
    expect(tooLong.stdout).toBe('');
    const nodeEnv = await run(['token', '--user', 'alice'], cwd, cleanEnv({ NODE_ENV: 'production' }));
    expect(nodeEnv.code).not.toBe(0);
    expect(nodeEnv.stdout).toBe('');
  });
});
