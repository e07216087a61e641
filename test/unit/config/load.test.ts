import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { z } from 'zod';
import { type ConfigIssue, formatConfigIssues } from '../../../src/config/format-issues.js';
import { type LoadConfigOptions, loadConfig } from '../../../src/config/load.js';
import {
  configSchema,
  type Hs256VerifierConfig,
  type SupabaseDownstreamConfig,
} from '../../../src/config/schema.js';
import { GatehouseError } from '../../../src/errors/gatehouse-error.js';

const SECRET = 'S3CRET-hunter2-do-not-print-0123456789abcdef';
const SHORT_SECRET = 'S3CRET-hunter2-short';

/** An in-memory file system: readFile throws ENOENT like fs does for anything not listed. */
function files(contents: Record<string, string>): (path: string) => string {
  return (path) => {
    const content = contents[path];
    if (content === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return content;
  };
}

function configError(options: LoadConfigOptions): GatehouseError {
  try {
    loadConfig(options);
  } catch (error) {
    expect(error).toBeInstanceOf(GatehouseError);
    expect((error as GatehouseError).code).toBe('ERR_CONFIG_INVALID');
    return error as GatehouseError;
  }
  throw new Error('expected loadConfig to throw');
}

function issuesOf(error: GatehouseError): ConfigIssue[] {
  return error.details?.issues as ConfigIssue[];
}

function pathsOf(error: GatehouseError): string[] {
  return issuesOf(error).map((issue) => issue.path);
}

function everythingSaid(error: GatehouseError): string {
  return [error.message, JSON.stringify(error.details), formatConfigIssues(error)].join('\n');
}

describe('loadConfig: layers', () => {
  it('returns the schema defaults when nothing is configured', () => {
    const readFile = () => {
      throw new Error('no file should be read');
    };
    expect(loadConfig({ env: {}, readFile })).toEqual(configSchema.parse({}));
  });

  it('treats an empty GATEHOUSE_CONFIG as no file', () => {
    expect(loadConfig({ env: { GATEHOUSE_CONFIG: '' }, readFile: files({}) })).toEqual(
      configSchema.parse({}),
    );
  });

  // req: MCP-TRANSPORT-LOCALHOST
  it('lets the config file (named by GATEHOUSE_CONFIG) override defaults, leaving other defaults in place', () => {
    const config = loadConfig({
      env: { GATEHOUSE_CONFIG: '/etc/gatehouse.json' },
      readFile: files({
        '/etc/gatehouse.json': JSON.stringify({ server: { port: 1234 }, log: { level: 'warn' } }),
      }),
    });
    expect(config.server.port).toBe(1234);
    expect(config.server.host).toBe('127.0.0.1');
    expect(config.log.level).toBe('warn');
    expect(config.sessions.maxPerUser).toBe(10);
  });

  it('prefers the file option over GATEHOUSE_CONFIG', () => {
    const config = loadConfig({
      file: 'chosen.json',
      env: { GATEHOUSE_CONFIG: 'ignored.json' },
      readFile: files({ 'chosen.json': '{"dataDir":"/chosen"}' }),
    });
    expect(config.dataDir).toBe('/chosen');
  });

  it('reads a real file with the default readFile', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-config-'));
    try {
      const file = join(dir, 'gatehouse.json');
      writeFileSync(file, '\uFEFF{"mode":"production"}\n');
      expect(loadConfig({ file, env: {} }).mode).toBe('production');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lets the environment override the file', () => {
    const config = loadConfig({
      file: 'g.json',
      env: { GATEHOUSE_SERVER__PORT: '9000' },
      readFile: files({ 'g.json': JSON.stringify({ server: { port: 1234, host: '0.0.0.0' } }) }),
    });
    expect(config.server.port).toBe(9000);
    expect(config.server.host).toBe('0.0.0.0');
  });

  it('lets overrides override the environment, ignoring undefined override fields', () => {
    const config = loadConfig({
      env: { GATEHOUSE_SERVER__PORT: '9000', GATEHOUSE_SERVER__HOST: '0.0.0.0' },
      overrides: { server: { port: 7000, host: undefined } },
    });
    expect(config.server.port).toBe(7000);
    expect(config.server.host).toBe('0.0.0.0');
  });

  it('replaces arrays rather than merging them', () => {
    const config = loadConfig({
      file: 'g.json',
      env: {},
      readFile: files({
        'g.json': JSON.stringify({ server: { allowedOrigins: ['https://a.example', 'https://b.example'] } }),
      }),
      overrides: { server: { allowedOrigins: ['https://c.example'] } },
    });
    expect(config.server.allowedOrigins).toEqual(['https://c.example']);
  });
});

describe('loadConfig: environment mapping', () => {
  it('coerces numbers, booleans, enums and JSON arrays to the field types', () => {
    const config = loadConfig({
      env: {
        GATEHOUSE_SESSIONS__IDLE_TIMEOUT_MS: '60000',
        GATEHOUSE_AUTH__DEV_TOKENS: 'false',
        GATEHOUSE_MODE: 'production',
        GATEHOUSE_LOG__LEVEL: 'debug',
        GATEHOUSE_DATA_DIR: '/var/lib/gatehouse',
        GATEHOUSE_SERVER__ALLOWED_ORIGINS: '["https://a.example","https://b.example"]',
      },
    });
    expect(config.sessions.idleTimeoutMs).toBe(60_000);
    expect(config.auth.devTokens).toBe(false);
    expect(config.mode).toBe('production');
    expect(config.log.level).toBe('debug');
    expect(config.dataDir).toBe('/var/lib/gatehouse');
    expect(config.server.allowedOrigins).toEqual(['https://a.example', 'https://b.example']);
    expect(loadConfig({ env: { GATEHOUSE_AUTH__DEV_TOKENS: '1' } }).auth.devTokens).toBe(true);
  });

  it('reports values that cannot be coerced, by path and variable', () => {
    const error = configError({
      env: {
        GATEHOUSE_SERVER__PORT: 'eighty',
        GATEHOUSE_AUTH__DEV_TOKENS: 'yes',
        GATEHOUSE_SERVER__ALLOWED_ORIGINS: '["https://a.example"',
      },
    });
    expect(issuesOf(error)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'server.port', source: 'env GATEHOUSE_SERVER__PORT' }),
        expect.objectContaining({ path: 'auth.devTokens', source: 'env GATEHOUSE_AUTH__DEV_TOKENS' }),
        expect.objectContaining({
          path: 'server.allowedOrigins',
          source: 'env GATEHOUSE_SERVER__ALLOWED_ORIGINS',
        }),
      ]),
    );
    expect(issuesOf(error)).toHaveLength(3);
  });

  it('sets array elements by index, and patches an element the file defined', () => {
    const config = loadConfig({
      file: 'g.json',
      env: {
        GATEHOUSE_AUTH__VERIFIERS__0__TIMEOUT_MS: '2000',
        GATEHOUSE_AUTH__VERIFIERS__1__KIND: 'hs256',
        GATEHOUSE_AUTH__VERIFIERS__1__SECRET: SECRET,
        GATEHOUSE_AUTH__VERIFIERS__1__AUDIENCE: '["a","b"]',
      },
      readFile: files({
        'g.json': JSON.stringify({
          auth: {
            verifiers: [
              {
                kind: 'jwks',
                jwksUrl: 'https://idp.example/jwks',
                issuer: 'https://idp.example/',
                audience: 'api',
              },
            ],
          },
        }),
      }),
    });
    expect(config.auth.verifiers).toEqual([
      expect.objectContaining({
        kind: 'jwks',
        issuer: 'https://idp.example/',
        timeoutMs: 2000,
        audience: 'api',
      }),
      expect.objectContaining({ kind: 'hs256', secret: SECRET, audience: ['a', 'b'] }),
    ]);
  });

  it('applies a whole JSON array before patching one of its elements by index', () => {
    const config = loadConfig({
      env: {
        GATEHOUSE_SERVER__ALLOWED_ORIGINS: '["https://a.example","https://b.example"]',
        GATEHOUSE_SERVER__ALLOWED_ORIGINS__1: 'https://c.example',
      },
    });
    expect(config.server.allowedOrigins).toEqual(['https://a.example', 'https://c.example']);
  });

  it('reports a gap in indexed variables at the missing index', () => {
    const error = configError({ env: { GATEHOUSE_AUTH__REQUIRED_SCOPES__1: 'mcp:read' } });
    expect(pathsOf(error)).toEqual(['auth.requiredScopes[0]']);
    expect(issuesOf(error)[0]?.source).toBe('env GATEHOUSE_AUTH__REQUIRED_SCOPES__1');
  });

  it('selects a discriminated-union variant from the environment', () => {
    const config = loadConfig({
      env: {
        GATEHOUSE_UPSTREAM__KIND: 'http',
        GATEHOUSE_UPSTREAM__URL: 'https://upstream.example/mcp',
        GATEHOUSE_UPSTREAM__TOKEN_TTL_SECONDS: '30',
      },
    });
    expect(config.upstream).toEqual({
      kind: 'http',
      url: 'https://upstream.example/mcp',
      tokenTtlSeconds: 30,
      headers: {},
      requestTimeoutMs: 60_000,
    });
  });

  it('drops the file variant fields when the environment switches the variant', () => {
    const config = loadConfig({
      file: 'g.json',
      env: { GATEHOUSE_UPSTREAM__KIND: 'http', GATEHOUSE_UPSTREAM__URL: 'https://upstream.example/mcp' },
      readFile: files({
        'g.json': JSON.stringify({ upstream: { kind: 'stdio', command: 'node', args: ['x.js'] } }),
      }),
    });
    expect(config.upstream?.kind).toBe('http');
    expect(config.upstream).not.toHaveProperty('command');
  });

  it('sets a record entry by its verbatim key', () => {
    const config = loadConfig({
      env: {
        GATEHOUSE_UPSTREAM__KIND: 'stdio',
        GATEHOUSE_UPSTREAM__COMMAND: 'node',
        GATEHOUSE_UPSTREAM__ENV__NODE_ENV: 'test',
      },
    });
    expect(config.upstream).toMatchObject({ kind: 'stdio', command: 'node', env: { NODE_ENV: 'test' } });
  });

  it('rejects an unknown GATEHOUSE_ variable, naming it', () => {
    const error = configError({ env: { GATEHOUSE_SERVR__PORT: '9000', GATEHOUSE_SERVER__PROT: '9000' } });
    const sources = issuesOf(error).map((issue) => issue.source);
    expect(sources).toEqual(['env GATEHOUSE_SERVER__PROT', 'env GATEHOUSE_SERVR__PORT']);
    expect(error.message).toContain('GATEHOUSE_SERVR__PORT');
    expect(error.message).toContain('GATEHOUSE_SERVER__PROT');
  });

  it('ignores allow-listed non-config variables and unrelated variables', () => {
    const config = loadConfig({
      env: {
        GATEHOUSE_USER_ID: 'u1',
        GATEHOUSE_USER_EMAIL: 'u1@example.com',
        GATEHOUSE_SCOPES: 'a b',
        GATEHOUSE_ISSUER: 'https://issuer.example',
        GATEHOUSE_SESSION_ID: 's1',
        GATEHOUSE_TEST_ANYTHING: 'x',
        GATEHOUSE_DEMO_NOTES_DIR: '/tmp',
        PATH: '/usr/bin',
        gatehouse_server__port: 'not ours',
      },
    });
    expect(config).toEqual(configSchema.parse({}));
  });
});

describe('loadConfig: secrets from files', () => {
  it('sets a field from X_FILE, trimming the trailing newline', () => {
    const readFile = files({ '/run/secrets/jwt': `${SECRET}\n` });
    const config = loadConfig({
      env: {
        GATEHOUSE_AUTH__VERIFIERS__0__KIND: 'hs256',
        GATEHOUSE_AUTH__VERIFIERS__0__SECRET_FILE: '/run/secrets/jwt',
      },
      readFile,
    });
    expect(config.auth.verifiers[0]).toMatchObject({ kind: 'hs256', secret: SECRET });
    expect(config.auth.verifiers[0]).not.toHaveProperty('secretFile');
  });

  it('reads a config-file secretFile into secret', () => {
    const config = loadConfig({
      file: 'g.json',
      env: {},
      readFile: files({
        'g.json': JSON.stringify({
          auth: { verifiers: [{ kind: 'hs256', secretFile: '/run/secrets/jwt' }] },
        }),
        '/run/secrets/jwt': `${SECRET}\r\n`,
      }),
    });
    expect(config.auth.verifiers[0]).toMatchObject({ kind: 'hs256', secret: SECRET });
    expect(config.auth.verifiers[0]).not.toHaveProperty('secretFile');
  });

  it('lets a higher layer secret replace a lower layer secretFile', () => {
    const config = loadConfig({
      file: 'g.json',
      env: {},
      readFile: files({
        'g.json': JSON.stringify({
          auth: { verifiers: [{ kind: 'hs256', secretFile: '/run/secrets/jwt' }] },
        }),
        '/run/secrets/jwt': 'x'.repeat(40),
      }),
      overrides: { auth: { verifiers: [{ kind: 'hs256', secret: SECRET }] } },
    });
    expect(config.auth.verifiers[0]).toMatchObject({ secret: SECRET });
  });

  it('rejects a variable set both directly and as X_FILE', () => {
    const error = configError({
      env: {
        GATEHOUSE_AUTH__VERIFIERS__0__KIND: 'hs256',
        GATEHOUSE_AUTH__VERIFIERS__0__SECRET: SECRET,
        GATEHOUSE_AUTH__VERIFIERS__0__SECRET_FILE: '/run/secrets/jwt',
      },
      readFile: files({ '/run/secrets/jwt': SECRET }),
    });
    expect(pathsOf(error)).toContain('auth.verifiers[0].secret');
    expect(issuesOf(error).find((issue) => issue.path === 'auth.verifiers[0].secret')?.source).toBe(
      'env GATEHOUSE_AUTH__VERIFIERS__0__SECRET_FILE',
    );
    expect(everythingSaid(error)).not.toContain(SECRET);
  });

  it('reports an unreadable X_FILE at the field it would set', () => {
    const error = configError({
      env: {
        GATEHOUSE_AUTH__VERIFIERS__0__KIND: 'hs256',
        GATEHOUSE_AUTH__VERIFIERS__0__SECRET_FILE: '/missing',
      },
      readFile: files({}),
    });
    expect(issuesOf(error)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          path: 'auth.verifiers[0].secret',
          source: 'env GATEHOUSE_AUTH__VERIFIERS__0__SECRET_FILE',
        }),
      ]),
    );
  });
});

describe('loadConfig: errors', () => {
  it('reports every bad field with its path and source in one error', () => {
    const error = configError({
      file: 'gatehouse.json',
      env: {
        GATEHOUSE_LOG__LEVEL: 'loud',
        GATEHOUSE_SESSIONS__MAX_PER_USER: 'many',
        GATEHOUSE_SESSIONS__ABSOLUTE_LIFETIME_MS: '1000',
      },
      readFile: files({
        'gatehouse.json': JSON.stringify({ server: { port: 70000, bogus: true }, upstream: { kind: 'ftp' } }),
      }),
      overrides: { mode: 'staging' as 'production' },
    });
    expect(issuesOf(error)).toEqual(
      expect.arrayContaining([
        { path: 'server.port', source: 'file gatehouse.json', message: expect.any(String) },
        { path: 'server.bogus', source: 'file gatehouse.json', message: expect.any(String) },
        { path: 'upstream.kind', source: 'file gatehouse.json', message: expect.any(String) },
        { path: 'log.level', source: 'env GATEHOUSE_LOG__LEVEL', message: expect.any(String) },
        {
          path: 'sessions.maxPerUser',
          source: 'env GATEHOUSE_SESSIONS__MAX_PER_USER',
          message: expect.any(String),
        },
        {
          path: 'sessions.idleTimeoutMs',
          source: 'env GATEHOUSE_SESSIONS__ABSOLUTE_LIFETIME_MS',
          message: expect.any(String),
        },
        { path: 'mode', source: 'flag', message: expect.any(String) },
      ]),
    );
    expect(issuesOf(error)).toHaveLength(7);
  });

  it('lists each issue on its own line as path: message (source)', () => {
    const error = configError({ env: { GATEHOUSE_SERVER__PORT: '-1', GATEHOUSE_MODE: 'staging' } });
    const lines = formatConfigIssues(error).split('\n');
    const issues = issuesOf(error);
    expect(lines).toHaveLength(issues.length + 1);
    issues.forEach((issue, index) => {
      expect(lines[index + 1]).toBe(`${issue.path}: ${issue.message} (${issue.source})`);
    });
    expect(error.message).toBe(formatConfigIssues(error));
  });

  it('narrows a failed verifier union to the variant its kind names', () => {
    const error = configError({
      env: {
        GATEHOUSE_AUTH__VERIFIERS__0__KIND: 'jwks',
        GATEHOUSE_AUTH__VERIFIERS__0__ISSUER: 'https://idp.example/',
      },
    });
    expect(pathsOf(error).sort()).toEqual(['auth.verifiers[0].audience', 'auth.verifiers[0].jwksUrl']);
  });

  it('reports invalid JSON in the config file with the file name, and keeps reporting other problems', () => {
    const error = configError({
      file: 'broken.json',
      env: { GATEHOUSE_SERVER__PORT: 'x' },
      // Comments and trailing commas are allowed (JSONC); a missing comma is not.
      readFile: files({ 'broken.json': '{"server": {"port": 1 "host": "x"}}' }),
    });
    expect(issuesOf(error)).toEqual([
      expect.objectContaining({ path: '', source: 'file broken.json' }),
      expect.objectContaining({ path: 'server.port', source: 'env GATEHOUSE_SERVER__PORT' }),
    ]);
    expect(issuesOf(error)[0]?.message).toContain('broken.json');
  });

  it('reports an unreadable config file', () => {
    const error = configError({ file: 'missing.json', env: {}, readFile: files({}) });
    expect(issuesOf(error)).toEqual([expect.objectContaining({ path: '', source: 'file missing.json' })]);
  });

  it('reports a config file that is not a JSON object', () => {
    const error = configError({ file: 'list.json', env: {}, readFile: files({ 'list.json': '[1,2]' }) });
    expect(pathsOf(error)).toEqual(['']);
  });

  it('never puts a secret value in an error, whatever the layer', () => {
    const errors = [
      configError({
        env: {
          GATEHOUSE_AUTH__VERIFIERS__0__KIND: 'hs256',
          GATEHOUSE_AUTH__VERIFIERS__0__SECRET: SHORT_SECRET,
        },
      }),
      configError({
        file: 'g.json',
        env: {},
        readFile: files({
          'g.json': JSON.stringify({ auth: { verifiers: [{ kind: 'hs256', secret: SHORT_SECRET }] } }),
        }),
      }),
      configError({
        env: { GATEHOUSE_AUTH__VERIFIERS__0__KIND: 'hs256', GATEHOUSE_AUTH__VERIFIERS__0__SECRET_FILE: '/s' },
        readFile: files({ '/s': `${SHORT_SECRET}\n` }),
      }),
      configError({
        file: 'g.json',
        env: {},
        readFile: files({ 'g.json': `{"auth":{"verifiers":[{"kind":"hs256","secret":${SHORT_SECRET}}]}}` }),
      }),
      configError({ env: { GATEHOUSE_AUTH__VERIFIERS: `[{"kind":"hs256","secret":${SHORT_SECRET}}]` } }),
      configError({ env: { GATEHOUSE_AUTH__VERIFIERS__0__SECRT: SHORT_SECRET } }),
      configError({
        env: { GATEHOUSE_AUTH__CACHE_MAX_ENTRIES_FILE: '/s' },
        readFile: files({ '/s': SHORT_SECRET }),
      }),
    ];
    for (const error of errors) expect(everythingSaid(error)).not.toContain('hunter2');
    const [tooShort] = issuesOf(errors[0] as GatehouseError);
    expect(tooShort?.path).toBe('auth.verifiers[0].secret');
    expect(tooShort?.message).toContain(String(SHORT_SECRET.length));
  });

  it('rejects __proto__ keys without polluting Object.prototype', () => {
    const error = configError({
      file: 'g.json',
      env: {},
      readFile: files({
        'g.json': '{"__proto__": {"polluted": true}, "server": {"__proto__": {"port": 1}}}',
      }),
    });
    expect(pathsOf(error).sort()).toEqual(['__proto__', 'server.__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('loadConfig: a typo in the config file', () => {
  function typoIn(config: Record<string, unknown>): ConfigIssue[] {
    return issuesOf(
      configError({ file: 'g.json', env: {}, readFile: files({ 'g.json': JSON.stringify(config) }) }),
    );
  }

  it('suggests the field it was probably meant to be, as the environment does', () => {
    expect(typoIn({ upstrem: { kind: 'stdio', command: 'x' } })).toEqual([
      expect.objectContaining({ path: 'upstrem', source: 'file g.json' }),
    ]);
    expect(typoIn({ upstrem: {} })[0]?.message).toContain('did you mean "upstream"');
    expect(typoIn({ server: { prot: 8080 } })[0]?.message).toContain('did you mean "port"');
    expect(typoIn({ auth: { verifiers: [{ kind: 'hs256', secret: SECRET, isuer: 'x' }] } })[0]).toMatchObject(
      {
        path: 'auth.verifiers[0].isuer',
        message: expect.stringContaining('did you mean "issuer"'),
      },
    );
  });

  it('suggests nothing for a field unlike any other', () => {
    const [issue] = typoIn({ server: { completelyUnrelated: true } });
    expect(issue?.path).toBe('server.completelyUnrelated');
    expect(issue?.message).not.toContain('did you mean');
  });
});

describe('loadConfig: NODE_ENV', () => {
  it('runs NODE_ENV=production in production mode when nothing sets mode', () => {
    expect(loadConfig({ env: { NODE_ENV: 'production' } }).mode).toBe('production');
    expect(loadConfig({ env: { NODE_ENV: 'development' } }).mode).toBe('development');
    expect(loadConfig({ env: {} }).mode).toBe('development');
  });

  it('lets an explicit mode win over NODE_ENV, from any layer', () => {
    expect(loadConfig({ env: { NODE_ENV: 'production', GATEHOUSE_MODE: 'development' } }).mode).toBe(
      'development',
    );
    const file = files({ 'g.json': JSON.stringify({ mode: 'development' }) });
    expect(loadConfig({ file: 'g.json', env: { NODE_ENV: 'production' }, readFile: file }).mode).toBe(
      'development',
    );
    expect(loadConfig({ env: { NODE_ENV: 'production' }, overrides: { mode: 'development' } }).mode).toBe(
      'development',
    );
  });
});

/** Every issue's path, including those inside a union's branches. */
function issuePaths(issues: readonly z.core.$ZodIssue[], base: PropertyKey[] = []): string[] {
  return issues.flatMap((issue) => {
    const path = [...base, ...issue.path];
    const nested =
      issue.code === 'invalid_union' ? issue.errors.flatMap((branch) => issuePaths(branch, path)) : [];
    return [path.join('.'), ...nested];
  });
}

describe('the parsed configuration holds its secrets', () => {
  it('types a verifier secret and the Supabase secret or key as present', () => {
    expectTypeOf<Hs256VerifierConfig['secret']>().toEqualTypeOf<string>();
    expectTypeOf<Extract<SupabaseDownstreamConfig, { secret: string }>['secret']>().toEqualTypeOf<string>();
    expectTypeOf<Extract<SupabaseDownstreamConfig, { privateKey: string }>['kid']>().toEqualTypeOf<string>();
  });

  it('refuses a …File field that reached the schema unread, at its path', () => {
    const unread = [
      [
        { auth: { verifiers: [{ kind: 'hs256', secretFile: '/run/secrets/jwt' }] } },
        'auth.verifiers.0.secretFile',
      ],
      [{ authorizationServer: { secretKeyFile: '/run/secrets/key' } }, 'authorizationServer.secretKeyFile'],
      [
        {
          downstream: {
            supabase: { issuer: 'https://ref.supabase.co/auth/v1', secretFile: '/run/secrets/jwt' },
          },
        },
        'downstream.supabase.secretFile',
      ],
    ] as const;
    for (const [input, path] of unread) {
      const result = configSchema.safeParse(input);
      expect(result.success, path).toBe(false);
      expect(issuePaths(result.error?.issues ?? [])).toContain(path);
    }
  });

  it('keeps configurations given their secrets parsing, without the …File fields', () => {
    const config = configSchema.parse({
      auth: { verifiers: [{ kind: 'hs256', secret: SECRET }] },
      downstream: { supabase: { issuer: 'https://ref.supabase.co/auth/v1', secret: SECRET } },
    });
    expect(config.auth.verifiers[0]).toMatchObject({ secret: SECRET });
    expect(config.downstream.supabase).toMatchObject({ secret: SECRET });
    expect(config.authorizationServer).not.toHaveProperty('secretKeyFile');
  });
});

describe('loadConfig: shared stores', () => {
  const PG_URL = 'postgres://gatehouse:pg-Passw0rd-do-not-print@db.internal:5432/gatehouse';

  it('takes a PostgreSQL store from GATEHOUSE_STORE__KIND and GATEHOUSE_STORE__URL, with defaults', () => {
    const config = loadConfig({ env: { GATEHOUSE_STORE__KIND: 'postgres', GATEHOUSE_STORE__URL: PG_URL } });
    expect(config.store).toEqual({ kind: 'postgres', url: PG_URL, schema: 'gatehouse', poolSize: 10 });
  });

  it('takes a Redis store with its key prefix', () => {
    const config = loadConfig({
      env: {
        GATEHOUSE_STORE__KIND: 'redis',
        GATEHOUSE_STORE__URL: 'rediss://cache.internal:6380/2',
        GATEHOUSE_STORE__KEY_PREFIX: 'gh:',
      },
    });
    expect(config.store).toEqual({ kind: 'redis', url: 'rediss://cache.internal:6380/2', keyPrefix: 'gh:' });
  });

  it('reads the URL from urlFile, so its password stays out of the config', () => {
    const config = loadConfig({
      env: { GATEHOUSE_STORE__KIND: 'postgres', GATEHOUSE_STORE__URL_FILE: '/run/secrets/pg' },
      readFile: files({ '/run/secrets/pg': `${PG_URL}\n` }),
    });
    expect(config.store).toMatchObject({ kind: 'postgres', url: PG_URL });

    const fromFile = loadConfig({
      file: '/etc/gatehouse.json',
      env: {},
      readFile: files({
        '/etc/gatehouse.json': JSON.stringify({ store: { kind: 'redis', urlFile: '/run/secrets/redis' } }),
        '/run/secrets/redis': 'redis://:pw@cache.internal:6379/0\n',
      }),
    });
    expect(fromFile.store).toEqual({
      kind: 'redis',
      url: 'redis://:pw@cache.internal:6379/0',
      keyPrefix: 'gatehouse:',
    });
    expect(fromFile.store).not.toHaveProperty('urlFile');
  });

  it.each([
    ['no URL', { GATEHOUSE_STORE__KIND: 'postgres' }, 'store.url'],
    [
      'a Redis URL for PostgreSQL',
      { GATEHOUSE_STORE__KIND: 'postgres', GATEHOUSE_STORE__URL: 'redis://x:6379' },
      'store.url',
    ],
    [
      'an http URL for Redis',
      { GATEHOUSE_STORE__KIND: 'redis', GATEHOUSE_STORE__URL: 'http://x:6379' },
      'store.url',
    ],
    [
      'a schema that is no plain identifier',
      {
        GATEHOUSE_STORE__KIND: 'postgres',
        GATEHOUSE_STORE__URL: PG_URL,
        GATEHOUSE_STORE__SCHEMA: 'a"; drop',
      },
      'store.schema',
    ],
  ])('refuses %s, naming the field', (_what, env, path) => {
    expect(pathsOf(configError({ env }))).toContain(path);
  });

  it('never repeats a malformed URL, which may carry a password', () => {
    const error = configError({
      env: {
        GATEHOUSE_STORE__KIND: 'postgres',
        GATEHOUSE_STORE__URL: 'mysql://u:pg-Passw0rd-do-not-print@h/db',
      },
    });
    expect(everythingSaid(error)).not.toContain('pg-Passw0rd-do-not-print');
  });
});
