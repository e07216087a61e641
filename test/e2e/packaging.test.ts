import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');

function commandExists(command: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, command)));
}

describe('the npm package', { timeout: 120_000 }, () => {
  let dir: string;
  let tarball: string;
  let files: string[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-pack-'));
    // The dist/ already built (`prepare` builds it on install); no scripts, so packing takes seconds.
    const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], {
      cwd: root,
    });
    const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    if (packed === undefined) throw new Error('npm pack reported nothing');
    tarball = join(dir, packed.filename);
    files = packed.files.map((file) => file.path);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is mcp-gatehouse (the npm name gatehouse is another project), with the gatehouse command', () => {
    const manifest = JSON.parse(read('package.json'));
    expect(manifest.name).toBe('mcp-gatehouse');
    expect(manifest.bin).toEqual({ gatehouse: './bin/gatehouse.js' });
    expect(tarball.endsWith(`mcp-gatehouse-${manifest.version}.tgz`)).toBe(true);
  });

  it('holds dist/, bin/, README, LICENSE and package.json, nothing else', () => {
    const allowed = /^(dist\/.+|bin\/gatehouse\.js|README\.md|LICENSE|package\.json)$/;
    expect(files.filter((file) => !allowed.test(file))).toEqual([]);
    for (const needed of ['bin/gatehouse.js', 'dist/cli/entry.js', 'dist/index.js', 'README.md', 'LICENSE'])
      expect(files).toContain(needed);
  });

  it('runs from an unpacked copy: gatehouse --help', async () => {
    const unpacked = join(dir, 'unpacked');
    await run('mkdir', ['-p', unpacked]);
    await run('tar', ['-xzf', tarball, '-C', unpacked]);
    const pkg = join(unpacked, 'package');
    // ESM ignores NODE_PATH: the dependencies are found through a node_modules beside the package.
    symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'), 'dir');
    const { stdout } = await run(process.execPath, [join(pkg, 'bin', 'gatehouse.js'), '--help'], {
      cwd: dir,
    });
    expect(stdout).toContain('Usage: gatehouse');
    expect(stdout).toMatch(/\bserve\b/);
    expect(stdout).toMatch(/\bdoctor\b/);
  });

  it('README runs this project with every npx line (never the unrelated `gatehouse` package)', () => {
    const invoked = [...read('README.md').matchAll(/\bnpx\s+(?:-y\s+)?(\S+)/g)].map((match) => match[1]);
    expect(invoked.length).toBeGreaterThan(0);
    const known = new Set(['mcp-gatehouse', 'mcp-remote', '-p', '@modelcontextprotocol/inspector']);
    expect(invoked.filter((name) => !known.has(name as string))).toEqual([]);
    expect(invoked).toContain('mcp-gatehouse');
  });
});

describe('deployment files', () => {
  it.skipIf(!commandExists('systemd-analyze'))(
    'deploy/gatehouse.service passes systemd-analyze verify without a warning (skipped where systemd-analyze is absent)',
    async () => {
      const { stdout, stderr } = await run('systemd-analyze', [
        'verify',
        join(root, 'deploy/gatehouse.service'),
      ]);
      expect(`${stdout}${stderr}`.trim()).toBe('');
    },
  );

  it('the systemd unit drains as Gatehouse does: SIGTERM to Gatehouse alone, time above shutdownTimeoutMs', () => {
    const unit = read('deploy/gatehouse.service');
    const setting = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(unit)?.[1];
    expect(setting('KillSignal')).toBe('SIGTERM');
    // control-group (the default) would SIGTERM the stdio children too, cutting the calls the drain waits for.
    expect(setting('KillMode')).toBe('mixed');
    expect(Number.parseInt(setting('TimeoutStopSec') ?? '0', 10)).toBeGreaterThan(10);
    expect(setting('User')).toBe('gatehouse');
    expect(setting('StateDirectory')).toBe('gatehouse');
    expect(setting('EnvironmentFile')).toMatch(/gatehouse\.env$/);
    for (const key of ['NoNewPrivileges', 'ProtectHome', 'PrivateTmp']) expect(setting(key)).toBe('yes');
    expect(setting('ProtectSystem')).toBe('strict');
    expect(setting('ReadWritePaths')).toBe('/var/lib/gatehouse');
    expect(setting('RestrictAddressFamilies')).toBeDefined();
  });

  // Docker is not available on every machine that runs the suite (it is not on CI's): this reads the
  // Dockerfile for what matters at run time; building it is left to a machine with a daemon.
  it('the Dockerfile: multi-stage, non-root, /data volume, 0.0.0.0:8787, node health check, exec-form start', () => {
    const dockerfile = read('Dockerfile');
    const instructions = dockerfile
      .replace(/\\\n/g, ' ')
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'));
    const all = (name: string) => instructions.filter((line) => line.startsWith(`${name} `));
    expect(all('FROM')).toHaveLength(2);
    for (const from of all('FROM')) expect(from).toMatch(/^FROM node:20-(bookworm-)?slim\b/);
    expect(dockerfile).toMatch(/npm ci\b/);
    expect(dockerfile).toMatch(/npm run build/);
    expect(dockerfile).toMatch(/npm prune --omit=dev/);
    expect(all('USER')).toEqual(['USER node']);
    expect(all('VOLUME').join()).toContain('/data');
    expect(all('EXPOSE')).toEqual(['EXPOSE 8787']);
    expect(dockerfile).toContain('GATEHOUSE_SERVER__HOST=0.0.0.0');
    expect(dockerfile).toContain('GATEHOUSE_DATA_DIR=/data');
    const health = all('HEALTHCHECK').join();
    expect(health).toMatch(/CMD \["node"/);
    expect(health).toContain('/healthz');
    expect(instructions.join('\n')).not.toMatch(/\bcurl\b|\bwget\b/);
    for (const start of [...all('ENTRYPOINT'), ...all('CMD')]) expect(start).toMatch(/^(ENTRYPOINT|CMD) \[/);
    // Every file the build copies from the context gets past .dockerignore.
    const ignore = read('.dockerignore');
    for (const copy of all('COPY').filter((line) => !line.includes('--from='))) {
      const sources = copy.split(/\s+/).slice(1, -1);
      for (const source of sources) {
        expect(ignore, `.dockerignore lets ${source} in`).toMatch(
          new RegExp(`^!${source.replace(/[.*]/g, (c) => `\\${c}`)}(/\\*\\*)?$`, 'm'),
        );
      }
    }
  });
});
