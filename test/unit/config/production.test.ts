import { describe, expect, it } from 'vitest';
import { createGateway } from '../../../src/app.js';
import {
  assertProductionReady,
  isLoopbackHost,
  type ProductionRefusal,
  productionIssues,
  secretWeakness,
} from '../../../src/config/production.js';
import { configSchema, type GatehouseConfig, type GatehouseConfigInput } from '../../../src/config/schema.js';
import { GatehouseError } from '../../../src/errors/gatehouse-error.js';

const GOOD_SECRET = 'f3J9q2LxV8mZ0rT5wK7yB1nC4hD6sA9eG2uP8oQ3iX5';
const GOOD_KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 11) % 256)).toString('base64url');

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

function refusal(config: GatehouseConfig): GatehouseError {
  try {
    assertProductionReady(config);
  } catch (error) {
    expect(error).toBeInstanceOf(GatehouseError);
    expect((error as GatehouseError).code).toBe('ERR_CONFIG_INVALID');
    return error as GatehouseError;
  }
  throw new Error('expected a production refusal');
}

const codes = (config: GatehouseConfig): ProductionRefusal[] =>
  productionIssues(config).map((issue) => issue.code);

describe('production refusals', () => {
  it('accepts a production configuration with nothing development-only', () => {
    const config = production({ auth: hs256(GOOD_SECRET), authorizationServer: { secretKey: GOOD_KEY } });
    expect(productionIssues(config)).toEqual([]);
    expect(() => assertProductionReady(config)).not.toThrow();
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

  it('refuses a store shared between instances without an explicit secret key (shared_store_secret_key)', () => {
    // No shared adapter is in the schema yet; the check keys on "neither sqlite nor memory".
    const shared = { ...production(), store: { kind: 'postgres' } } as unknown as GatehouseConfig;
    expect(codes(shared)).toEqual(['shared_store_secret_key']);
    const withKey = {
      ...production({ authorizationServer: { secretKey: GOOD_KEY } }),
      store: { kind: 'postgres' },
    } as unknown as GatehouseConfig;
    expect(codes(withKey)).toEqual([]);
  });

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
    expect(() => assertProductionReady(config)).not.toThrow();
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
