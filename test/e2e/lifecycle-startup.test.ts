import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CLI_ARGS, cleanEnv, runCli } from '../helpers/cli.js';

describe('gatehouse serve start-up', { timeout: 60_000 }, () => {
  const cleanup: Array<() => void | Promise<void>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });
  const workDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-startup-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  };

  it('exits 2 when the port is taken, saying how to choose another (no stack trace)', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const port = (blocker.address() as { port: number }).port;
    const dir = workDir();
    const result = await runCli(['serve', '--port', String(port), '--data-dir', dir], dir, cleanEnv());
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`port ${port} on 127.0.0.1 is already in use`);
    for (const way of ['--port', 'server.port', 'GATEHOUSE_SERVER__PORT'])
      expect(result.stderr).toContain(way);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('prints one banner block — mode, store, verifiers — that no log line interrupts', async () => {
    const dir = workDir();
    writeFileSync(
      join(dir, 'gatehouse.json'),
      JSON.stringify({
        dataDir: join(dir, 'data'),
        server: { port: 0 },
        auth: {
          verifiers: [
            {
              kind: 'jwks',
              name: 'corp-idp',
              issuer: 'https://idp.example.test/',
              jwksUrl: 'https://idp.example.test/jwks',
              audience: 'gatehouse',
            },
          ],
        },
      }),
    );
    // stdout (JSON logs) and stderr (the banner) into one file, in the order they were written.
    const output = join(dir, 'output.log');
    const fd = openSync(output, 'w');
    const child = spawn(process.execPath, [...CLI_ARGS, 'serve', '--config', 'gatehouse.json'], {
      cwd: dir,
      env: cleanEnv(),
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    cleanup.push(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    });
    await vi.waitFor(
      () => expect(readFileSync(output, 'utf8')).toMatch(/Gatehouse is listening\.[\s\S]*\n\n/),
      {
        timeout: 30_000,
      },
    );
    const lines = readFileSync(output, 'utf8').split('\n');
    const start = lines.indexOf('Gatehouse is listening.');
    const end = lines.indexOf('', start);
    const banner = lines.slice(start, end);
    expect(banner.some((line) => line.startsWith('{'))).toBe(false);
    expect(banner.join('\n')).toMatch(/Mode:\s+development/);
    expect(banner.join('\n')).toMatch(/Store:\s+sqlite at /);
    expect(banner.join('\n')).toMatch(
      /Verifiers:\s+own keys \(issuer http:\/\/127\.0\.0\.1:\d+\/.*corp-idp \(JWKS, issuer https:\/\/idp\.example\.test\/\)/,
    );
    // The start-up log lines came first, the `listening` line last among them.
    const logs = lines.slice(0, start).filter((line) => line.startsWith('{'));
    expect(logs.map((line) => JSON.parse(line).msg)).toContain('gateway ready');
    expect(JSON.parse(logs.at(-1) as string).msg).toBe('listening');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
