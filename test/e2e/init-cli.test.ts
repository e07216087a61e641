import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { STARTER_CONFIG } from '../../src/cli/init.js';
import { loadConfig } from '../../src/config/load.js';
import { cleanEnv, runCli } from '../helpers/cli.js';

describe('gatehouse init', { timeout: 60_000 }, () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const workDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-init-'));
    dirs.push(dir);
    return dir;
  };

  it('writes a commented starter config that loads and validates as it is', async () => {
    const dir = workDir();
    const result = await runCli(['init'], dir, cleanEnv());
    expect(result.code).toBe(0);
    const file = join(dir, 'gatehouse.jsonc');
    expect(result.stdout).toContain('gatehouse.jsonc');
    const text = readFileSync(file, 'utf8');
    expect(text).toBe(STARTER_CONFIG);
    expect(text).toMatch(/^\s*\/\/ /m);
    expect(statSync(file).mode & 0o077).toBe(0);
    // The same loader `serve` uses, with nothing else set: every value is valid.
    const config = loadConfig({ file, env: {} });
    expect(config).toMatchObject({
      mode: 'development',
      dataDir: '.gatehouse',
      server: { host: '127.0.0.1', port: 8787, mcpPath: '/mcp', shutdownTimeoutMs: 10_000 },
      store: { kind: 'sqlite' },
    });
    // And the values it writes are the defaults: loading it equals loading nothing.
    expect(config).toEqual(loadConfig({ env: {} }));
    // doctor reads it too (exit 0 or 1 for a warning or a check, never 2: a configuration error).
    const doctor = await runCli(['doctor', '--config', file, '--json'], dir, cleanEnv());
    expect(JSON.parse(doctor.stdout).checks.find((c: { id: string }) => c.id === 'config')?.status).not.toBe(
      'fail',
    );
    expect(doctor.code).not.toBe(2);
  });

  it('writes where --config or GATEHOUSE_CONFIG says', async () => {
    const dir = workDir();
    expect((await runCli(['init', '--config', 'custom.jsonc'], dir, cleanEnv())).code).toBe(0);
    expect(existsSync(join(dir, 'custom.jsonc'))).toBe(true);
    expect((await runCli(['init'], dir, cleanEnv({ GATEHOUSE_CONFIG: 'from-env.jsonc' }))).code).toBe(0);
    expect(existsSync(join(dir, 'from-env.jsonc'))).toBe(true);
    expect(existsSync(join(dir, 'gatehouse.jsonc'))).toBe(false);
  });

  it('refuses to overwrite an existing file (exit 1), leaving it untouched', async () => {
    const dir = workDir();
    const file = join(dir, 'gatehouse.jsonc');
    writeFileSync(file, '{"server":{"port":9000}}');
    const result = await runCli(['init'], dir, cleanEnv());
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('already exists');
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(readFileSync(file, 'utf8')).toBe('{"server":{"port":9000}}');
    // There is no --force.
    const forced = await runCli(['init', '--force'], dir, cleanEnv());
    expect(forced.code).not.toBe(0);
    expect(readFileSync(file, 'utf8')).toBe('{"server":{"port":9000}}');
  });
});
