import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { fingerprint } from '../../src/crypto/fingerprint.js';
import { type CliResult, cleanEnv, runCli } from '../helpers/cli.js';

const CONFIGURED_SECRET = 'f3J9q2LxV8mZ0rT5wK7yB1nC4hD6sA9eG2uP8oQ3iX5';
const OTHER_SECRET = 'Zk4Q8vN2bM7cX1wR5tY9uJ3hG6fD0sA8pL2oK7iE4mW';
const ISSUER = 'https://project-ref.supabase.co/auth/v1';

function sign(secret: string): Promise<string> {
  return new SignJWT({ role: 'authenticated', email: 'alice@example.com' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject('alice')
    .setIssuer(ISSUER)
    .setAudience('authenticated')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret));
}

// Each case runs the real CLI (a few seconds apiece under tsx).
describe('gatehouse doctor', { timeout: 60_000 }, () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0)) await fn();
  });

  function setup(config: Record<string, unknown>): string {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-doctor-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'supabase.secret'), `${CONFIGURED_SECRET}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'gatehouse.json'), JSON.stringify(config));
    return dir;
  }

  const hs256Config = {
    auth: {
      verifiers: [{ kind: 'hs256', name: 'supabase', secretFile: 'supabase.secret', issuer: ISSUER }],
    },
  };

  function expectNoSecrets(result: CliResult, ...tokens: string[]): void {
    const output = result.stdout + result.stderr;
    for (const secret of [CONFIGURED_SECRET, OTHER_SECRET, ...tokens]) {
      expect(output).not.toContain(secret);
    }
    for (const token of tokens) {
      // Neither the signature nor the payload segment of the token is echoed.
      for (const segment of token.split('.').slice(1)) expect(output).not.toContain(segment);
    }
  }

  it('catches a token signed with a different HS256 secret and names the fingerprints', async () => {
    const dir = setup(hs256Config);
    const token = await sign(OTHER_SECRET);
    writeFileSync(join(dir, 'token.jwt'), token);
    const configuredFp = fingerprint(CONFIGURED_SECRET);
    const otherFp = fingerprint(OTHER_SECRET);

    const plain = await runCli(
      ['doctor', '--config', 'gatehouse.json', '--token-file', 'token.jwt'],
      dir,
      cleanEnv(),
    );
    expect(plain.code).toBe(1);
    expect(plain.stdout).toContain(configuredFp);
    expect(plain.stdout).toMatch(/signature does not match the configured secret of verifier supabase/);
    expect(plain.stdout).toMatch(/--expect-fingerprint supabase=/);
    expectNoSecrets(plain, token);

    const compared = await runCli(
      [
        'doctor',
        '--config',
        'gatehouse.json',
        '--token',
        token,
        '--expect-fingerprint',
        `supabase=${otherFp}`,
      ],
      dir,
      cleanEnv(),
    );
    expect(compared.code).toBe(1);
    expect(compared.stdout).toContain(configuredFp);
    expect(compared.stdout).toContain(otherFp);
    expect(compared.stdout).toMatch(/secrets differ/);
    expectNoSecrets(compared, token);

    const json = await runCli(
      [
        'doctor',
        '--config',
        'gatehouse.json',
        '--token-file',
        'token.jwt',
        '--json',
        '--expect-fingerprint',
        `supabase=${otherFp}`,
      ],
      dir,
      cleanEnv(),
    );
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as {
      ok: boolean;
      checks: Array<{ id: string; status: string; details?: Record<string, unknown> }>;
    };
    expect(report.ok).toBe(false);
    const tokenCheck = report.checks.find((check) => check.id === 'token');
    expect(tokenCheck?.status).toBe('fail');
    expect(tokenCheck?.details).toMatchObject({
      reason: 'bad_signature',
      verifier: 'supabase',
      configuredFingerprint: configuredFp,
      expectedFingerprint: otherFp,
    });
    expect(report.checks.find((check) => check.id === 'fingerprint:supabase')?.status).toBe('fail');
    expectNoSecrets(json, token);
  });

  it('verifies a token signed with the configured secret and exits 0', async () => {
    const dir = setup(hs256Config);
    const token = await sign(CONFIGURED_SECRET);
    const result = await runCli(
      [
        'doctor',
        '--config',
        'gatehouse.json',
        '--token-file',
        '-',
        '--expect-fingerprint',
        `supabase=${fingerprint(CONFIGURED_SECRET)}`,
        '--json',
      ],
      dir,
      cleanEnv(),
      `${token}\n`,
    );
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as {
      ok: boolean;
      checks: Array<{ id: string; status: string; details?: Record<string, unknown> }>;
    };
    expect(report.ok).toBe(true);
    const tokenCheck = report.checks.find((check) => check.id === 'token');
    expect(tokenCheck?.status).toBe('ok');
    expect(tokenCheck?.details).toMatchObject({
      verifier: 'supabase',
      iss: ISSUER,
      aud: 'authenticated',
      sub: 'alice',
    });
    expect(report.checks.find((check) => check.id === 'fingerprint:supabase')?.status).toBe('ok');
    expect(report.checks.find((check) => check.id === 'verifier:supabase')?.details).toMatchObject({
      length: CONFIGURED_SECRET.length,
      fingerprint: fingerprint(CONFIGURED_SECRET),
    });
    expectNoSecrets(result, token);
  });

  it('reports a token routed to no verifier and an expired token by their reason codes', async () => {
    const dir = setup(hs256Config);
    const foreign = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('mallory')
      .setIssuer('https://elsewhere.example/')
      .setAudience('authenticated')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(CONFIGURED_SECRET));
    const expired = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setIssuer(ISSUER)
      .setAudience('authenticated')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
      .sign(new TextEncoder().encode(CONFIGURED_SECRET));
    const cases = [
      [foreign, 'unknown_issuer'],
      [expired, 'token_expired'],
      ['not-a-jwt', 'malformed'],
    ] as const;
    const results = await Promise.all(
      cases.map(([token]) =>
        runCli(['doctor', '--config', 'gatehouse.json', '--token', token, '--json'], dir, cleanEnv()),
      ),
    );
    results.forEach((result, index) => {
      expect(result.code).toBe(1);
      const report = JSON.parse(result.stdout) as {
        checks: Array<{ id: string; details?: { reason?: string } }>;
      };
      expect(report.checks.find((check) => check.id === 'token')?.details?.reason).toBe(cases[index]?.[1]);
    });
  });

  it('reports JWKS key ids, issuer metadata and a clock-skew warning from a skewed Date header', async () => {
    const { publicKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'key-2026', alg: 'ES256', use: 'sig' };
    const skewMs = 10 * 60_000;
    let origin = '';
    const server: Server = createServer((request, response) => {
      const date = new Date(Date.now() + skewMs).toUTCString();
      const headers = { 'content-type': 'application/json', date };
      if (request.url === '/jwks.json') {
        response.writeHead(200, headers).end(JSON.stringify({ keys: [jwk] }));
      } else if (request.url === '/.well-known/openid-configuration') {
        response
          .writeHead(200, headers)
          .end(JSON.stringify({ issuer: origin, jwks_uri: `${origin}/jwks.json` }));
      } else {
        response.writeHead(404, headers).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const dir = setup({
      auth: {
        verifiers: [
          {
            kind: 'jwks',
            name: 'authkit',
            issuer: origin,
            jwksUrl: `${origin}/jwks.json`,
            audience: 'mcp',
            algorithms: ['ES256'],
          },
        ],
      },
    });

    const human = await runCli(['doctor', '--config', 'gatehouse.json'], dir, cleanEnv());
    expect(human.stdout).toMatch(
      /verifier:authkit\s+JWKS reachable: 1 key\(s\), kids key-2026; algorithms ES256/,
    );
    expect(human.stdout).toMatch(/WARN\s+clock:authkit\s+clock skew/);

    const result = await runCli(['doctor', '--config', 'gatehouse.json', '--json'], dir, cleanEnv());
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as {
      checks: Array<{ id: string; status: string; details?: Record<string, unknown> }>;
    };
    const byId = (id: string) => report.checks.find((check) => check.id === id);
    expect(byId('verifier:authkit')?.status).toBe('ok');
    expect(byId('verifier:authkit')?.details?.keys).toEqual([{ kid: 'key-2026', kty: 'EC', alg: 'ES256' }]);
    expect(byId('metadata:authkit')?.status).toBe('ok');
    expect(byId('clock:authkit')?.status).toBe('warn');
    expect(Math.abs(Number(byId('clock:authkit')?.details?.skewSeconds) - 600)).toBeLessThanOrEqual(2);
  });

  it('fails a JWKS that cannot be reached and exits 2 on an invalid configuration', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const origin = `http://127.0.0.1:${port}`;
    const dir = setup({
      auth: {
        verifiers: [
          { kind: 'jwks', name: 'down', issuer: origin, jwksUrl: `${origin}/jwks.json`, audience: 'mcp' },
        ],
      },
    });
    const down = await runCli(['doctor', '--config', 'gatehouse.json', '--json'], dir, cleanEnv());
    expect(down.code).toBe(1);
    const report = JSON.parse(down.stdout) as {
      checks: Array<{ id: string; status: string; summary: string; details?: Record<string, unknown> }>;
    };
    const verifier = report.checks.find((check) => check.id === 'verifier:down');
    expect(verifier?.status).toBe('fail');
    expect(verifier?.details?.reason).toBe('jwks_unreachable');
    expect(verifier?.summary).toContain(`JWKS at ${origin}/jwks.json unreachable`);

    const invalid = await runCli(['doctor', '--json'], dir, cleanEnv({ GATEHOUSE_SERVER__PORT: 'nope' }));
    expect(invalid.code).toBe(2);
    const parsed = JSON.parse(invalid.stdout) as { checks: Array<{ id: string; status: string }> };
    expect(parsed.checks[0]).toMatchObject({ id: 'config', status: 'fail' });

    const usage = await runCli(['doctor', '--expect-fingerprint', 'supabase'], dir, cleanEnv());
    expect(usage.code).toBe(2);
  });

  it('fails in production mode on a secret key file others can read, and exits 0 once it is 0600', async () => {
    const dir = setup({ mode: 'production', server: { publicUrl: 'https://mcp.example.com' } });
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir, { mode: 0o700 });
    const secretKey = randomBytes(32).toString('base64url');
    const keyFile = join(dataDir, 'secret.key');
    writeFileSync(keyFile, `${secretKey}\n`);
    chmodSync(keyFile, 0o644);
    const args = ['doctor', '--config', 'gatehouse.json', '--data-dir', dataDir];

    const exposed = await runCli(args, dir, cleanEnv());
    expect(exposed.code).toBe(1);
    expect(exposed.stdout).toMatch(
      /FAIL\s+secretKey\s+file \S+secret\.key: 32 bytes, sha256:[0-9a-f]{12}; mode 0644/,
    );
    expect(exposed.stdout).toContain(`→ chmod 600 ${keyFile}`);
    expect(exposed.stdout + exposed.stderr).not.toContain(secretKey);

    chmodSync(keyFile, 0o600);
    const tight = await runCli(args, dir, cleanEnv());
    expect(tight.code).toBe(0);
    expect(tight.stdout).toMatch(/ok\s+secretKey\s+file \S+secret\.key: 32 bytes/);
    expect(tight.stdout + tight.stderr).not.toContain(secretKey);
  });

  it('fails in production mode with a development secret, naming the refusal', async () => {
    const dir = setup({
      mode: 'production',
      server: { publicUrl: 'https://mcp.example.com' },
      auth: {
        verifiers: [
          {
            kind: 'hs256',
            name: 'supabase',
            secret: 'super-secret-jwt-token-with-at-least-32-characters-long',
          },
        ],
      },
    });
    const result = await runCli(['doctor', '--config', 'gatehouse.json'], dir, cleanEnv());
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/FAIL\s+production\s+production mode refuses to start: dev_secret/);
    expect(result.stdout).not.toContain('super-secret-jwt-token-with-at-least-32-characters-long');
  });

  it('suggests the field a config-file typo meant, and says NODE_ENV=production decides the mode', async () => {
    const typo = setup({ upstrem: { kind: 'stdio', command: 'node' } });
    const invalid = await runCli(['doctor', '--config', 'gatehouse.json', '--json'], typo, cleanEnv());
    expect(invalid.code).toBe(2);
    const [config] = (JSON.parse(invalid.stdout) as { checks: Array<{ id: string; hints?: string[] }> })
      .checks;
    expect(config?.id).toBe('config');
    expect(config?.hints?.join('\n')).toContain('did you mean "upstream"');

    const implied = setup({});
    const production = await runCli(
      ['doctor', '--config', 'gatehouse.json', '--json'],
      implied,
      cleanEnv({ NODE_ENV: 'production' }),
    );
    expect((JSON.parse(production.stdout) as { mode: string }).mode).toBe('production');

    const explicit = setup({ mode: 'development' });
    const loud = await runCli(
      ['doctor', '--config', 'gatehouse.json'],
      explicit,
      cleanEnv({ NODE_ENV: 'production' }),
    );
    expect(loud.code).toBe(0);
    expect(loud.stdout).toMatch(/WARN\s+mode\s+DEVELOPMENT MODE although NODE_ENV=production/);
  });
});
