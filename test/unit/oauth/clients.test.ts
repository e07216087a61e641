import { describe, expect, it } from 'vitest';
import { tokenHash } from '../../../src/crypto/fingerprint.js';
import { OAuthError, type OAuthErrorCode } from '../../../src/errors/oauth-error.js';
import type { CimdResolver } from '../../../src/oauth/cimd.js';
import { type ClientLookup, isClientIdentifierUrl } from '../../../src/oauth/cimd.js';
import {
  preRegisteredClientSchema,
  preRegisteredToClientRecord,
} from '../../../src/oauth/client-metadata.js';
import {
  authenticateClient,
  type ClientAuthenticationRequest,
  createClientRegistry,
  type ResolvedClient,
  readClientCredentials,
  usedBasicAuthentication,
} from '../../../src/oauth/clients.js';
import { createManualClock } from '../../../src/ops/clock.js';
import { createMemoryStores } from '../../../src/stores/memory/index.js';
import type { ClientRecord, TokenEndpointAuthMethod } from '../../../src/stores/ports.js';

const SECRET = 'a-long-client-secret-with-+:%-and-spaces ü';

function record(
  clientId: string,
  method: TokenEndpointAuthMethod,
  extra: Partial<ClientRecord> = {},
): ClientRecord {
  return {
    clientId,
    ...(method === 'none' ? {} : { secretHash: tokenHash(SECRET) }),
    tokenEndpointAuthMethod: method,
    redirectUris: ['https://app.example.com/cb'],
    grantTypes: ['authorization_code'],
    responseTypes: ['code'],
    applicationType: 'web',
    metadata: {},
    createdAt: 0,
    ...extra,
  };
}

function client(clientId: string, method: TokenEndpointAuthMethod): ResolvedClient {
  return { ...record(clientId, method), source: 'registered' };
}

/** RFC 6749 §2.3.1: form-urlencode id and secret, then base64 `id:secret`. */
function basic(id: string, secret: string): string {
  const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${encode(id)}:${encode(secret)}`).toString('base64')}`;
}

function failure(fn: () => unknown): { code: OAuthErrorCode; reason: string | undefined; status: number } {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(OAuthError);
    const { code, reason, status } = error as OAuthError;
    return { code, reason, status };
  }
  throw new Error('expected a throw');
}

describe('authenticateClient', () => {
  const id = 'client:with special/chars';

  // req: RFC6749-2.3.1-BASIC
  it('accepts client_secret_basic with form-urlencoded id and secret', () => {
    const request = { authorizationHeader: basic(id, SECRET) };
    expect(authenticateClient(client(id, 'client_secret_basic'), request)).toEqual({
      clientId: id,
      method: 'client_secret_basic',
    });
    expect(usedBasicAuthentication(request)).toBe(true);
  });

  it('accepts Basic with a body client_id that agrees', () => {
    expect(
      authenticateClient(client(id, 'client_secret_basic'), {
        authorizationHeader: basic(id, SECRET),
        clientId: id,
      }).method,
    ).toBe('client_secret_basic');
  });

  it('accepts client_secret_post', () => {
    const request = { clientId: id, clientSecret: SECRET };
    expect(authenticateClient(client(id, 'client_secret_post'), request).method).toBe('client_secret_post');
    expect(usedBasicAuthentication(request)).toBe(false);
  });

  it('accepts a public client presenting only its client_id', () => {
    expect(authenticateClient(client(id, 'none'), { clientId: id })).toEqual({
      clientId: id,
      method: 'none',
    });
  });

  it.each<[string, TokenEndpointAuthMethod, ClientAuthenticationRequest, OAuthErrorCode, string]>([
    [
      'wrong Basic secret',
      'client_secret_basic',
      { authorizationHeader: basic(id, `${SECRET}x`) },
      'invalid_client',
      'invalid_secret',
    ],
    [
      'wrong post secret',
      'client_secret_post',
      { clientId: id, clientSecret: 'nope' },
      'invalid_client',
      'invalid_secret',
    ],
    [
      'empty post secret',
      'client_secret_post',
      { clientId: id, clientSecret: '' },
      'invalid_client',
      'invalid_secret',
    ],
    [
      'post for a Basic client',
      'client_secret_basic',
      { clientId: id, clientSecret: SECRET },
      'invalid_client',
      'auth_method_mismatch',
    ],
    [
      'Basic for a post client',
      'client_secret_post',
      { authorizationHeader: basic(id, SECRET) },
      'invalid_client',
      'auth_method_mismatch',
    ],
    [
      'no secret for a confidential client',
      'client_secret_basic',
      { clientId: id },
      'invalid_client',
      'auth_method_mismatch',
    ],
    [
      'a secret for a public client',
      'none',
      { clientId: id, clientSecret: SECRET },
      'invalid_client',
      'auth_method_mismatch',
    ],
    [
      'Basic for a public client',
      'none',
      { authorizationHeader: basic(id, '') },
      'invalid_client',
      'auth_method_mismatch',
    ],
    [
      'credentials of another client',
      'client_secret_basic',
      { authorizationHeader: basic('other', SECRET) },
      'invalid_client',
      'client_id_mismatch',
    ],
    [
      'both Basic and a body secret',
      'client_secret_basic',
      { authorizationHeader: basic(id, SECRET), clientSecret: SECRET },
      'invalid_request',
      'multiple_auth_methods',
    ],
    [
      'Basic and a different body client_id',
      'client_secret_basic',
      { authorizationHeader: basic(id, SECRET), clientId: 'other' },
      'invalid_request',
      'client_id_mismatch',
    ],
    ['no client_id at all', 'none', {}, 'invalid_request', 'missing_client_id'],
    [
      'Basic that is not base64',
      'client_secret_basic',
      { authorizationHeader: 'Basic !!!notbase64' },
      'invalid_request',
      'malformed_basic_header',
    ],
    [
      'Basic without a colon',
      'client_secret_basic',
      { authorizationHeader: `Basic ${Buffer.from('nocolon').toString('base64')}` },
      'invalid_request',
      'malformed_basic_header',
    ],
    [
      'Basic with an empty id',
      'client_secret_basic',
      { authorizationHeader: `Basic ${Buffer.from(':secret').toString('base64')}` },
      'invalid_request',
      'malformed_basic_header',
    ],
    [
      'Basic with bad percent-encoding',
      'client_secret_basic',
      { authorizationHeader: `Basic ${Buffer.from('a%zz:b').toString('base64')}` },
      'invalid_request',
      'malformed_basic_header',
    ],
    [
      'Basic with invalid UTF-8',
      'client_secret_basic',
      { authorizationHeader: `Basic ${Buffer.from([0x61, 0x3a, 0xff]).toString('base64')}` },
      'invalid_request',
      'malformed_basic_header',
    ],
    [
      'Basic with no credentials',
      'client_secret_basic',
      { authorizationHeader: 'Basic' },
      'invalid_request',
      'malformed_basic_header',
    ],
    [
      'a Bearer header',
      'client_secret_basic',
      { authorizationHeader: 'Bearer abc' },
      'invalid_request',
      'malformed_basic_header',
    ],
  ])('refuses %s', (_name, method, request, code, reason) => {
    const error = failure(() => authenticateClient(client(id, method), request));
    expect(error.code).toBe(code);
    expect(error.reason).toBe(reason);
    expect(error.status).toBe(code === 'invalid_client' ? 401 : 400);
  });

  it('refuses a confidential client record that has no secret hash', () => {
    const broken: ResolvedClient = { ...client(id, 'client_secret_post'), secretHash: undefined };
    expect(failure(() => authenticateClient(broken, { clientId: id, clientSecret: SECRET })).reason).toBe(
      'invalid_secret',
    );
  });

  it('tells the caller when Basic was attempted, even malformed', () => {
    expect(usedBasicAuthentication({ authorizationHeader: 'basic xyz' })).toBe(true);
    expect(usedBasicAuthentication({ authorizationHeader: 'Bearer xyz' })).toBe(false);
    expect(usedBasicAuthentication({})).toBe(false);
  });

  it('readClientCredentials names the client to look up before authentication', () => {
    expect(readClientCredentials({ authorizationHeader: basic('abc', 's3cret') })).toEqual({
      clientId: 'abc',
      method: 'client_secret_basic',
      secret: 's3cret',
    });
    expect(readClientCredentials({ clientId: 'abc' })).toEqual({ clientId: 'abc', method: 'none' });
  });
});

describe('createClientRegistry', () => {
  const clock = createManualClock();
  const cimdId = 'https://app.example.com/oauth/client.json';

  function fakeCimd(
    result: ClientRecord | OAuthError,
  ): CimdResolver & { calls: string[]; lookups: (ClientLookup | undefined)[] } {
    const calls: string[] = [];
    const lookups: (ClientLookup | undefined)[] = [];
    return {
      calls,
      lookups,
      isMetadataDocumentUrl: isClientIdentifierUrl,
      async resolve(clientId, lookup) {
        calls.push(clientId);
        lookups.push(lookup);
        if (result instanceof OAuthError) throw result;
        return result;
      },
    };
  }

  it('finds configured, registered and metadata-document clients, each tagged with its source', async () => {
    const stores = createMemoryStores();
    await stores.clients.create(record('dyn-1', 'none'));
    const configured = preRegisteredToClientRecord(
      preRegisteredClientSchema.parse({ clientId: 'cli', redirectUris: ['http://127.0.0.1/cb'] }),
    );
    const cimd = fakeCimd(record(cimdId, 'none'));
    const registry = createClientRegistry({
      clients: stores.clients,
      preRegistered: [configured],
      cimd,
      clock,
    });
    expect((await registry.get('cli'))?.source).toBe('configured');
    expect((await registry.get('dyn-1'))?.source).toBe('registered');
    expect((await registry.get(cimdId))?.source).toBe('metadata-document');
    expect(await registry.get('unknown')).toBeUndefined();
    expect(await registry.get('')).toBeUndefined();
    expect(cimd.calls).toEqual([cimdId]);
  });

  it('passes who is asking on to the metadata-document resolver', async () => {
    const stores = createMemoryStores();
    const cimd = fakeCimd(record(cimdId, 'none'));
    const registry = createClientRegistry({ clients: stores.clients, preRegistered: [], cimd, clock });
    await registry.get(cimdId, { clientAddress: '203.0.113.7' });
    await registry.get(cimdId);
    expect(cimd.lookups).toEqual([{ clientAddress: '203.0.113.7' }, undefined]);
  });

  it('prefers a configured client over a stored one with the same id, and over fetching a CIMD URL', async () => {
    const stores = createMemoryStores();
    await stores.clients.create(record('same', 'none', { clientName: 'stored' }));
    const cimd = fakeCimd(record(cimdId, 'none', { clientName: 'fetched' }));
    const registry = createClientRegistry({
      clients: stores.clients,
      preRegistered: [
        record('same', 'none', { clientName: 'configured' }),
        record(cimdId, 'none', { clientName: 'pinned' }),
      ],
      cimd,
      clock,
    });
    expect((await registry.get('same'))?.clientName).toBe('configured');
    expect((await registry.get(cimdId))?.clientName).toBe('pinned');
    expect(cimd.calls).toEqual([]);
  });

  it('propagates metadata-document failures', async () => {
    const stores = createMemoryStores();
    const cimd = fakeCimd(new OAuthError('invalid_client', { reason: 'cimd_fetch_failed' }));
    const registry = createClientRegistry({ clients: stores.clients, preRegistered: [], cimd, clock });
    await expect(registry.get(cimdId)).rejects.toMatchObject({
      code: 'invalid_client',
      reason: 'cimd_fetch_failed',
    });
  });

  it('without a resolver, a URL client_id is just an unknown id', async () => {
    const stores = createMemoryStores();
    const registry = createClientRegistry({ clients: stores.clients, preRegistered: [], clock });
    expect(await registry.get(cimdId)).toBeUndefined();
  });

  it('does not return a registration that lapsed', async () => {
    const stores = createMemoryStores();
    await stores.clients.create(record('lapsing', 'none', { expiresAt: clock.now() + 1000 }));
    const registry = createClientRegistry({ clients: stores.clients, preRegistered: [], clock });
    expect(await registry.get('lapsing')).toBeDefined();
    clock.advance(1000);
    expect(await registry.get('lapsing')).toBeUndefined();
  });

  it('refuses two configured clients with one id', () => {
    const stores = createMemoryStores();
    expect(() =>
      createClientRegistry({
        clients: stores.clients,
        preRegistered: [record('dup', 'none'), record('dup', 'none')],
        clock,
      }),
    ).toThrowError(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }));
  });

  it('authenticates a configured confidential client with the secret from the config file', async () => {
    const stores = createMemoryStores();
    const secret = 'x'.repeat(40);
    const configured = preRegisteredToClientRecord(
      preRegisteredClientSchema.parse({
        clientId: 'svc',
        clientSecret: secret,
        tokenEndpointAuthMethod: 'client_secret_post',
        redirectUris: ['https://svc.example/cb'],
      }),
    );
    const registry = createClientRegistry({ clients: stores.clients, preRegistered: [configured], clock });
    const found = await registry.get('svc');
    if (found === undefined) throw new Error('not found');
    expect(authenticateClient(found, { clientId: 'svc', clientSecret: secret }).method).toBe(
      'client_secret_post',
    );
    expect(
      failure(() => authenticateClient(found, { clientId: 'svc', clientSecret: 'y'.repeat(40) })).code,
    ).toBe('invalid_client');
  });
});
