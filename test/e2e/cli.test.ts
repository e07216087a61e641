import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanEnv, CLI_ENTRY as entry, runCli, TSX_LOADER as tsx } from '../helpers/cli.js';

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
        '--import',
        tsx,
        entry,
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
});
