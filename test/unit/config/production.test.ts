import { describe, expect, it } from 'vitest';
import type { FileModeReader } from '../../../src/config/local-files.js';
import {
  assertProductionReady,
  isDevelopmentUnderProductionEnv,
  isLoopbackHost,
  type ProductionRefusal,
  productionIssues,
} from '../../../src/config/production.js';
import { configSchema, type GatehouseConfig, type GatehouseConfigInput } from '../../../src/config/schema.js';
import { secretWeakness } from '../../../src/config/secret-strength.js';
import { createGateway } from '../../../src/edge/gateway.js';
import { GatehouseError } from '../../../src/errors/gatehouse-error.js';

const GOOD_SECRET = 'f3J9q2LxV8mZ0rT5wK7yB1nC4hD6sA9eG2uP8oQ3iX5';
/** 32 random bytes, fixed so the test is repeatable. */
const GOOD_KEY = 'q0Zq1dYH1x1yHn4A2C4oQm8nV9nqOd3bB5H9wAf1s7k';
/** Unit tests read no disk: every file of the deployment is absent unless a test says otherwise. */
const NO_FILES: FileModeReader = () => undefined;

/** A production configuration that passes every check; each test breaks one thing. */
function production(overrides: GatehouseConfigInput = {}): GatehouseConfig {
  return configSchema.parse({
    mode: 'production',
    server: { publicUrl: 'https://mcp.example.com' },
    ...overrides,
  });
}

function hs256(secret: string): GatehouseConfigInput['auth'] {
  return { verifiers: [{ kind: 'hs256', name: 'supabase', secret }] };
}

function refusal(config: GatehouseConfig, fileMode: FileModeReader = NO_FILES): GatehouseError {
  try {
    assertProductionReady(config, { fileMode });
  } catch (error) {
    expect(error).toBeInstanceOf(GatehouseError);
    expect((error as GatehouseError).code).toBe('ERR_CONFIG_INVALID');
    return error as GatehouseError;
  }
  throw new Error('expected a production refusal');
}

const codes = (config: GatehouseConfig, fileMode: FileModeReader = NO_FILES): ProductionRefusal[] =>
  productionIssues(config, { fileMode }).map((issue) => issue.code);

describe('production refusals', () => {
  it('accepts a production configuration with nothing development-only', () => {
    const config = production({ auth: hs256(GOOD_SECRET), authorizationServer: { secretKey: GOOD_KEY } });
    expect(productionIssues(config, { fileMode: NO_FILES })).toEqual([]);
    expect(() => assertProductionReady(config, { fileMode: NO_FILES })).not.toThrow();
  });

  it.each<[ProductionRefusal, string, GatehouseConfigInput]>([
    ['dev_tokens', 'auth.devTokens', { auth: { devTokens: true } }],
    [
      'dev_secret',
      'auth.verifiers[0].secret',
      { auth: hs256('super-secret-jwt-token-with-at-least-32-characters-long') },
    ],
    [
      'dev_secret',
      'auth.verifiers[0].secret',
      { auth: hs256('your-super-secret-jwt-token-with-at-least-32-characters-long') },
    ],
    ['weak_secret', 'auth.verifiers[0].secret', { auth: hs256('a'.repeat(64)) }],
    [
      'dev_secret',
      'downstream.supabase.secret',
      {
        downstream: {
          supabase: {
            issuer: 'https://ref.supabase.co/auth/v1',
            secret: 'super-secret-jwt-token-with-at-least-32-characters-long',
          },
        },
      },
    ],
    [
      'weak_secret',
      'downstream.supabase.secret',
      { downstream: { supabase: { issuer: 'https://ref.supabase.co/auth/v1', secret: 'b'.repeat(40) } } },
    ],
    ['weak_secret', 'auth.verifiers[0].secret', { auth: hs256('abcabcabcabcabcabcabcabcabcabcabcabc') }],
    [
      'weak_secret_key',
      'authorizationServer.secretKey',
      { authorizationServer: { secretKey: 'A'.repeat(43) } },
    ],
    [
      'private_network_metadata',
      'authorizationServer.clientIdMetadataDocuments.allowPrivateNetworks',
      { authorizationServer: { clientIdMetadataDocuments: { allowPrivateNetworks: true } } },
    ],
    ['insecure_public_url', 'server.publicUrl', { server: { publicUrl: 'http://mcp.example.com' } }],
    ['insecure_public_url', 'server.publicUrl', { server: { host: '0.0.0.0' } }],
    ['memory_store', 'store.kind', { store: { kind: 'memory' } }],
  ])('refuses %s (%s)', (code, path, overrides) => {
    const config = production(overrides);
    expect(codes(config)).toEqual([code]);
    const error = refusal(config);
    expect(error.details?.issues).toEqual([expect.objectContaining({ code, path })]);
  });

  it.each([
    ['postgres', { kind: 'postgres' as const, url: 'postgres://gatehouse@db.internal:5432/gatehouse' }],
    ['redis', { kind: 'redis' as const, url: 'redis://cache.internal:6379/0' }],
  ])(
    'refuses a %s store, shared between instances, without an explicit secret key (shared_store_secret_key)',
    (_kind, store) => {
      expect(codes(production({ store }))).toEqual(['shared_store_secret_key']);
      expect(codes(production({ store, authorizationServer: { secretKey: GOOD_KEY } }))).toEqual([]);
    },
  );

  it('never puts the secret in the refusal', () => {
    const secret = 'super-secret-jwt-token-with-at-least-32-characters-long';
    const error = refusal(production({ auth: hs256(secret) }));
    expect(error.message).not.toContain(secret);
    expect(JSON.stringify(error.details)).not.toContain(secret);
  });

  it('lists every reason at once', () => {
    const config = production({
      server: { publicUrl: 'http://mcp.example.com' },
      auth: { devTokens: true, ...hs256('a'.repeat(40)) },
      store: { kind: 'memory' },
    });
    expect(codes(config).sort()).toEqual([
      'dev_tokens',
      'insecure_public_url',
      'memory_store',
      'weak_secret',
    ]);
  });

  it('allows plain http on loopback hosts only', () => {
    for (const host of ['localhost', '127.0.0.1', '127.1.2.3', '[::1]', 'app.localhost']) {
      expect(codes(production({ server: { publicUrl: `http://${host}:8787` } }))).toEqual([]);
    }
    expect(isLoopbackHost('10.0.0.1')).toBe(false);
    expect(isLoopbackHost('localhost.example.com')).toBe(false);
  });

  it('does nothing in development mode', () => {
    const config = configSchema.parse({ auth: { devTokens: true }, store: { kind: 'memory' } });
    expect(codes(config)).toEqual(['dev_tokens', 'memory_store']);
    expect(() => assertProductionReady(config, { fileMode: () => 0o777 })).not.toThrow();
  });

  it('judges secrets: published, short, or few distinct characters', () => {
    expect(secretWeakness(GOOD_SECRET)).toBeUndefined();
    expect(secretWeakness('short')).toBe('weak_secret');
    expect(secretWeakness('0'.repeat(32))).toBe('weak_secret');
  });

  it('createGateway refuses to start in production with a development secret', async () => {
    const config = production({ auth: hs256('super-secret-jwt-token-with-at-least-32-characters-long') });
    await expect(createGateway(config)).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      details: { issues: [expect.objectContaining({ code: 'dev_secret' })] },
    });
  });
});

describe('production refuses published and guessable secrets, wherever Gatehouse takes one', () => {
  const SUPABASE = 'https://ref.supabase.co/auth/v1';
  const secretPlaces: Array<[string, (secret: string) => GatehouseConfigInput]> = [
    ['auth.verifiers[0].secret', (secret) => ({ auth: hs256(secret) })],
    ['downstream.supabase.secret', (secret) => ({ downstream: { supabase: { issuer: SUPABASE, secret } } })],
    [
      'authorizationServer.clients[0].clientSecret',
      (secret) => ({
        authorizationServer: {
          clients: [{ clientId: 'svc', clientSecret: secret, redirectUris: ['https://app.example/cb'] }],
        },
      }),
    ],
    [
      'authorizationServer.dynamicRegistration.initialAccessToken',
      (secret) => ({ authorizationServer: { dynamicRegistration: { initialAccessToken: secret } } }),
    ],
  ];

  it.each<[string, ProductionRefusal]>([
    // jwt.io's current and former default secrets.
    ['a-string-secret-at-least-256-bits-long', 'dev_secret'],
    ['A-STRING-SECRET-AT-LEAST-256-BITS-LONG', 'dev_secret'],
    // Supabase's local-development secret, and PostgREST's tutorial secret.
    ['super-secret-jwt-token-with-at-least-32-characters-long', 'dev_secret'],
    ['reallyreallyreallyreallyverysafe', 'dev_secret'],
    // Placeholders repeated to pass a length check.
    ['changeme'.repeat(4), 'dev_secret'],
    ['changeme-'.repeat(5), 'dev_secret'],
    ['secret_'.repeat(6), 'dev_secret'],
    ['password'.repeat(4), 'dev_secret'],
    // Repeated, sequential or one-character secrets.
    ['password1password2password3password4', 'weak_secret'],
    ['abcdefghijklmnopqrstuvwxyz0123456789', 'weak_secret'],
    ['Qx7!'.repeat(10), 'weak_secret'],
  ])('refuses %s as %s in every place a shared secret is taken', (secret, code) => {
    for (const [path, place] of secretPlaces) {
      const config = production(place(secret));
      expect({ path, codes: codes(config) }).toEqual({ path, codes: [code] });
      expect(refusal(config).details?.issues).toEqual([expect.objectContaining({ code, path })]);
    }
  });

  it('accepts generated secrets in every place, and a 16-byte registration token', () => {
    for (const [path, place] of secretPlaces) {
      expect({ path, codes: codes(production(place(GOOD_SECRET))) }).toEqual({ path, codes: [] });
    }
    const token = production({
      authorizationServer: { dynamicRegistration: { initialAccessToken: 'kP3x9Zq2Lm7Wb4Rt' } },
    });
    expect(codes(token)).toEqual([]);
  });

  it('refuses a secret key whose bytes run in sequence (weak_secret_key)', () => {
    const sequential = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 11) % 256)).toString(
      'base64url',
    );
    expect(codes(production({ authorizationServer: { secretKey: sequential } }))).toEqual([
      'weak_secret_key',
    ]);
  });

  it('judges a secret on its value alone, never revealing it', () => {
    expect(secretWeakness('your-256-bit-secret')).toBe('dev_secret');
    expect(secretWeakness('your_256_bit_secret')).toBe('dev_secret');
    expect(secretWeakness(new Uint8Array(32))).toBe('weak_secret');
    const error = refusal(production({ auth: hs256('a-string-secret-at-least-256-bits-long') }));
    expect(JSON.stringify([error.message, error.details])).not.toContain('a-string-secret');
  });
});

describe('production refuses the local files doctor fails', () => {
  const dataDir = '/srv/gatehouse';
  const modes =
    (table: Record<string, number>): FileModeReader =>
    (path) =>
      table[path];
  const deployment = (overrides: GatehouseConfigInput = {}) => production({ dataDir, ...overrides });

  it.each<[string, Record<string, number>, ProductionRefusal[]]>([
    [
      'private files',
      { [dataDir]: 0o700, [`${dataDir}/secret.key`]: 0o600, [`${dataDir}/gatehouse.db`]: 0o600 },
      [],
    ],
    [
      'a secret key others may read',
      { [dataDir]: 0o700, [`${dataDir}/secret.key`]: 0o644 },
      ['secret_key_exposed'],
    ],
    ['a secret key the group may read', { [`${dataDir}/secret.key`]: 0o640 }, ['secret_key_exposed']],
    ['a data directory others may write', { [dataDir]: 0o777 }, ['data_dir_writable']],
    ['a database others may write', { [`${dataDir}/gatehouse.db`]: 0o666 }, ['store_writable']],
    // Readable only: what the database holds is hashed or sealed, so doctor warns and start-up proceeds.
    ['a readable data directory and database', { [dataDir]: 0o755, [`${dataDir}/gatehouse.db`]: 0o644 }, []],
  ])('%s', (_name, table, expected) => {
    expect(codes(deployment(), modes(table))).toEqual(expected);
    if (expected.length > 0) {
      expect(refusal(deployment(), modes(table)).details?.issues).toEqual(
        expected.map((code) => expect.objectContaining({ code })),
      );
    }
  });

  it('ignores a secret.key file when the key is configured, and every file of the memory store', () => {
    const open = modes({ [`${dataDir}/secret.key`]: 0o666 });
    expect(codes(deployment({ authorizationServer: { secretKey: GOOD_KEY } }), open)).toEqual([]);
    expect(codes(deployment({ store: { kind: 'memory' } }), () => 0o777)).toEqual(['memory_store']);
  });
});

describe('NODE_ENV=production with an explicit development mode', () => {
  it('is recognised, so serve and doctor can say it loudly', () => {
    const development = configSchema.parse({});
    expect(isDevelopmentUnderProductionEnv(development, { NODE_ENV: 'production' })).toBe(true);
    expect(isDevelopmentUnderProductionEnv(development, {})).toBe(false);
    expect(isDevelopmentUnderProductionEnv(production(), { NODE_ENV: 'production' })).toBe(false);
  });
});
