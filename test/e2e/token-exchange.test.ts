import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenSigner } from '../../src/tokens/sign.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const JWT = 'urn:ietf:params:oauth:token-type:jwt';
const API = 'https://api.example.test';
const SECRET = 'svc-secret-that-is-at-least-32-characters-long';
const REDIRECT = 'http://127.0.0.1:1/cb';

function post(
  gw: TestGateway,
  fields: Record<string, string>,
  credentials: { id: string; secret?: string } = { id: 'svc', secret: SECRET },
): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  const body: Record<string, string> = { ...fields };
  if (credentials.secret === undefined) body.client_id = credentials.id;
  else {
    headers.authorization = `Basic ${Buffer.from(`${credentials.id}:${credentials.secret}`).toString('base64')}`;
  }
  return fetch(`${gw.gateway.urls.publicUrl}/oauth/token`, {
    method: 'POST',
    headers,
    body: new URLSearchParams(body).toString(),
  });
}

async function expectError(response: Response, status: number, error: string): Promise<void> {
  expect(response.status).toBe(status);
  expect(response.headers.get('cache-control')).toBe('no-store');
  expect(((await response.json()) as { error: string }).error).toBe(error);
}

describe('RFC 8693 token exchange', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      store: { kind: 'memory' },
      authorizationServer: {
        clients: [
          { clientId: 'svc', clientSecret: SECRET, redirectUris: [REDIRECT] },
          { clientId: 'app', redirectUris: [REDIRECT] },
        ],
        tokenExchange: { audiences: [API] },
      },
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  const exchange = (subjectToken: string, extra: Record<string, string> = {}) => ({
    grant_type: GRANT,
    subject_token: subjectToken,
    subject_token_type: ACCESS_TOKEN,
    audience: API,
    ...extra,
  });

  it('issues a token for the allowed audience, as the subject user (§2.2.1)', async () => {
    const subject = await gw.token('alice', { scope: 'notes:read notes:write', email: 'alice@example.test' });
    const response = await post(gw, exchange(subject));
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      issued_token_type: ACCESS_TOKEN,
      token_type: 'Bearer',
      scope: 'notes:read notes:write',
    });
    expect(body).not.toHaveProperty('refresh_token');
    expect(body.expires_in).toBeGreaterThan(0);
    expect(body.expires_in).toBeLessThanOrEqual(300);
    const token = body.access_token as string;
    expect(decodeProtectedHeader(token).typ).toBe('JWT');
    const { payload } = await jwtVerify(token, createLocalJWKSet(gw.gateway.keys.publicJwks()), {
      algorithms: ['ES256'],
      issuer: gw.gateway.urls.issuer,
      audience: API,
    });
    expect(payload).toMatchObject({ sub: 'alice', aud: API, client_id: 'svc', email: 'alice@example.test' });

    // The exchanged token is no key to Gatehouse's own MCP endpoint.
    const mcp = await fetch(gw.mcpUrl, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/json, text/event-stream',
        'content-type': 'application/json',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(mcp.status).toBe(401);
  });

  it('narrows scope, accepts resource for audience, answers N_A for a requested jwt', async () => {
    const subject = await gw.token('alice', { scope: 'notes:read notes:write' });
    const { audience: _audience, ...withoutAudience } = exchange(subject);
    const response = await post(gw, {
      ...withoutAudience,
      resource: API,
      scope: 'notes:read',
      requested_token_type: JWT,
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ issued_token_type: JWT, token_type: 'N_A', scope: 'notes:read' });
    expect(decodeJwt(body.access_token as string)).toMatchObject({ aud: API, scope: 'notes:read' });
    await expectError(await post(gw, exchange(subject, { scope: 'notes:admin' })), 400, 'invalid_scope');
  });

  it('refuses an audience outside the allow-list with invalid_target', async () => {
    const subject = await gw.token('alice');
    await expectError(
      await post(gw, exchange(subject, { audience: 'https://evil.example.test' })),
      400,
      'invalid_target',
    );
    await expectError(
      await post(gw, exchange(subject, { audience: gw.gateway.urls.resource })),
      400,
      'invalid_target',
    );
  });

  it('requires an authenticated confidential client', async () => {
    const subject = await gw.token('alice');
    await expectError(await post(gw, exchange(subject), { id: 'app' }), 401, 'invalid_client');
    await expectError(
      await post(gw, exchange(subject), { id: 'svc', secret: `${SECRET}-wrong` }),
      401,
      'invalid_client',
    );
    await expectError(await post(gw, exchange(subject), { id: 'svc' }), 401, 'invalid_client');
  });

  it('refuses a garbage, foreign-audience, expired or revoked subject token with invalid_grant', async () => {
    await expectError(await post(gw, exchange('not-a-token')), 400, 'invalid_grant');
    const foreign = await gw.gateway.signer.sign({ subject: 'alice', audience: API, expiresInSeconds: 60 });
    await expectError(await post(gw, exchange(foreign)), 400, 'invalid_grant');
    const pastSigner = createTokenSigner({
      keys: gw.gateway.keys,
      issuer: gw.gateway.urls.issuer,
      clock: { now: () => Date.now() - 3_600_000 },
    });
    const expired = await pastSigner.sign({
      subject: 'alice',
      audience: gw.gateway.urls.resource,
      expiresInSeconds: 60,
    });
    await expectError(await post(gw, exchange(expired)), 400, 'invalid_grant');

    const revoked = await gw.token('alice');
    const jti = decodeJwt(revoked).jti as string;
    const now = Date.now();
    await gw.gateway.authorizationServer?.revocations.revoke({
      kind: 'jti',
      id: jti,
      revokedAt: now,
      expiresAt: now + 3_600_000,
    });
    await expectError(await post(gw, exchange(revoked)), 400, 'invalid_grant');
  });

  it('validates the request (§2.2.2 invalid_request)', async () => {
    const subject = await gw.token('alice');
    await expectError(await post(gw, exchange(subject, { subject_token_type: JWT })), 400, 'invalid_request');
    await expectError(
      await post(gw, exchange(subject, { requested_token_type: 'urn:x:saml' })),
      400,
      'invalid_request',
    );
    await expectError(await post(gw, exchange(subject, { actor_token: subject })), 400, 'invalid_request');
    const { subject_token: _token, ...noSubject } = exchange(subject);
    await expectError(await post(gw, noSubject), 400, 'invalid_request');
    const { audience: _audience, ...noAudience } = exchange(subject);
    await expectError(await post(gw, noAudience), 400, 'invalid_request');
  });

  it('advertises the grant in metadata', async () => {
    const metadata = (await (
      await fetch(`${gw.gateway.urls.publicUrl}/.well-known/oauth-authorization-server`)
    ).json()) as { grant_types_supported: string[] };
    expect(metadata.grant_types_supported).toContain(GRANT);
  });
});

describe('RFC 8693 token exchange, not configured', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      store: { kind: 'memory' },
      authorizationServer: { clients: [{ clientId: 'svc', clientSecret: SECRET, redirectUris: [REDIRECT] }] },
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('is disabled by default: unsupported_grant_type, and not advertised', async () => {
    const subject = await gw.token('alice');
    await expectError(
      await post(gw, {
        grant_type: GRANT,
        subject_token: subject,
        subject_token_type: ACCESS_TOKEN,
        audience: API,
      }),
      400,
      'unsupported_grant_type',
    );
    const metadata = (await (
      await fetch(`${gw.gateway.urls.publicUrl}/.well-known/oauth-authorization-server`)
    ).json()) as { grant_types_supported: string[] };
    expect(metadata.grant_types_supported).not.toContain(GRANT);
  });
});
