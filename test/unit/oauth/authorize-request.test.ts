import { describe, expect, it } from 'vitest';
import {
  AuthorizeError,
  type AuthorizeRequestContext,
  parseAuthorizeRequest,
} from '../../../src/oauth/authorize-request.js';
import type { ClientLookup } from '../../../src/oauth/cimd.js';
import type { ResolvedClient } from '../../../src/oauth/clients.js';

const RESOURCE = 'https://mcp.example.com/mcp';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

function client(clientId: string, source: ResolvedClient['source'], redirectUris: string[]): ResolvedClient {
  return {
    clientId,
    tokenEndpointAuthMethod: 'none',
    redirectUris,
    grantTypes: ['authorization_code'],
    responseTypes: ['code'],
    applicationType: 'web',
    metadata: {},
    createdAt: 0,
    source,
  };
}

const clients = new Map<string, ResolvedClient>([
  ['dcr', client('dcr', 'registered', ['https://attacker.example/cb'])],
  ['cfg', client('cfg', 'configured', ['https://operator.example/cb'])],
  // Registered before `ms-msdt:` was refused: the record is still in the store.
  ['old', client('old', 'registered', ['ms-msdt:/id'])],
]);

function context(lookups: (ClientLookup | undefined)[] = []): AuthorizeRequestContext {
  return {
    resolveClient: async (clientId, lookup) => {
      lookups.push(lookup);
      return clients.get(clientId);
    },
    resources: [RESOURCE],
    scopesSupported: ['notes:read'],
    defaultScopes: [],
  };
}

function params(clientId: string, redirectUri: string, extra: Record<string, string> = {}): URLSearchParams {
  return new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    code_challenge: CHALLENGE,
    code_challenge_method: 'S256',
    state: 's',
    resource: RESOURCE,
    ...extra,
  });
}

async function failure(promise: Promise<unknown>): Promise<AuthorizeError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AuthorizeError);
  return error as AuthorizeError;
}

describe('parseAuthorizeRequest', () => {
  it('names how the client became known, so the caller can decide whether errors may be redirected', async () => {
    expect(
      (await parseAuthorizeRequest(params('dcr', 'https://attacker.example/cb'), context())).clientSource,
    ).toBe('registered');
    const error = await failure(
      parseAuthorizeRequest(
        params('dcr', 'https://attacker.example/cb', { response_type: 'token' }),
        context(),
      ),
    );
    expect(error.error.code).toBe('unsupported_response_type');
    expect(error.redirect).toEqual({
      redirectUri: 'https://attacker.example/cb',
      state: 's',
      clientSource: 'registered',
    });
    const configured = await failure(
      parseAuthorizeRequest(
        params('cfg', 'https://operator.example/cb', { response_type: 'token' }),
        context(),
      ),
    );
    expect(configured.redirect?.clientSource).toBe('configured');
  });

  it('passes who is asking to the client lookup (metadata-document fetches are limited per address)', async () => {
    const lookups: (ClientLookup | undefined)[] = [];
    await parseAuthorizeRequest(params('dcr', 'https://attacker.example/cb'), context(lookups), {
      clientAddress: '203.0.113.7',
    });
    expect(lookups).toEqual([{ clientAddress: '203.0.113.7' }]);
  });

  it('answers directly, never redirecting, when a stored redirect URI uses a scheme that is now refused', async () => {
    const error = await failure(parseAuthorizeRequest(params('old', 'ms-msdt:/id'), context()));
    expect(error.error.code).toBe('invalid_request');
    expect(error.redirect).toBeUndefined();
  });

  // req: RFC8707-2-ABSOLUTE-URI
  it('refuses a resource that is missing, relative or carries a fragment with invalid_target', async () => {
    const served = await parseAuthorizeRequest(params('cfg', 'https://operator.example/cb'), context());
    expect(served.resource).toBe(RESOURCE);
    const missing = params('cfg', 'https://operator.example/cb');
    missing.delete('resource');
    for (const request of [
      missing,
      params('cfg', 'https://operator.example/cb', { resource: '/mcp' }),
      params('cfg', 'https://operator.example/cb', { resource: `${RESOURCE}#section` }),
    ]) {
      const error = await failure(parseAuthorizeRequest(request, context()));
      expect({ resource: request.get('resource'), code: error.error.code }).toEqual({
        resource: request.get('resource'),
        code: 'invalid_target',
      });
    }
  });
});
