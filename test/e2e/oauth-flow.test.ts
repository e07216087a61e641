import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { type CookieJar, formOf, signIn } from '../helpers/oauth.js';

const PASSWORD = 'correct horse battery staple';
const REDIRECT = 'http://127.0.0.1:53682/callback';
/** A client the operator configured: trusted with error redirects before the person interacts. */
const CONFIGURED_CLIENT = 'configured-app';

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

describe('authorization server over HTTP (fetch, form-filling user agent)', () => {
  let gw: TestGateway;
  let base: string;
  let resource: string;

  const form = (url: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(fields).toString(),
    });

  async function register(metadata: Record<string, unknown> = {}) {
    const response = await fetch(`${base}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        client_name: 'Test client',
        redirect_uris: [REDIRECT],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'none',
        ...metadata,
      }),
    });
    expect(response.status).toBe(201);
    return (await response.json()) as { client_id: string; client_secret?: string };
  }

  function authorizeUrl(clientId: string, challenge: string, extra: Record<string, string> = {}) {
    const url = new URL(`${base}/oauth/authorize`);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: REDIRECT,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: 'st-1',
      resource,
      ...extra,
    }).toString();
    return url;
  }

  async function codeFor(clientId: string, jar?: CookieJar) {
    const { verifier, challenge } = pkce();
    const result = await signIn(authorizeUrl(clientId, challenge), {
      username: 'alice',
      password: PASSWORD,
      ...(jar !== undefined && { jar }),
    });
    const code = result.callback.searchParams.get('code');
    expect(code).toBeTruthy();
    return {
      code: code as string,
      verifier,
      callback: result.callback,
      jar: result.jar,
      pages: result.pages,
    };
  }

  const exchange = (clientId: string, code: string, verifier: string, extra: Record<string, string> = {}) =>
    form(`${base}/oauth/token`, {
      grant_type: 'authorization_code',
      client_id: clientId,
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT,
      ...extra,
    });

  const refresh = (clientId: string, refreshToken: string) =>
    form(`${base}/oauth/token`, {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: refreshToken,
    });

  const mcpStatus = async (token: string) =>
    (
      await fetch(gw.mcpUrl, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2026-07-28',
          'mcp-method': 'tools/list',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'tools/list',
          params: {
            _meta: {
              'io.modelcontextprotocol/protocolVersion': '2026-07-28',
              'io.modelcontextprotocol/clientCapabilities': {},
              'io.modelcontextprotocol/clientInfo': { name: 'oauth-flow-test', version: '1.0.0' },
            },
          },
        }),
      })
    ).status;

  beforeAll(async () => {
    gw = await startTestGateway({
      authorizationServer: { clients: [{ clientId: CONFIGURED_CLIENT, redirectUris: [REDIRECT] }] },
    });
    base = gw.gateway.urls.publicUrl;
    resource = gw.gateway.urls.resource;
    await gw.gateway.authorizationServer?.accounts?.add({
      username: 'alice',
      password: PASSWORD,
      email: 'alice@example.com',
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  // req: MCP-AUTH-PRM-AUTHORIZATION-SERVERS, MCP-AUTH-AS-METADATA, MCP-AUTH-PKCE-ADVERTISED, MCP-AUTH-CIMD-ADVERTISED, RFC8414-3.1-WELL-KNOWN-PATH, RFC8414-3.3-ISSUER-IDENTICAL, RFC9207-3-METADATA
  it('publishes RFC 8414 metadata at every path clients probe, with the exact issuer', async () => {
    const issuer = gw.gateway.urls.issuer;
    expect(issuer).toBe(`${base}/`);
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
      const response = await fetch(`${base}${path}`);
      expect(response.status).toBe(200);
      const metadata = (await response.json()) as Record<string, unknown>;
      expect(metadata.issuer).toBe(issuer);
      expect(metadata.code_challenge_methods_supported).toEqual(['S256']);
      expect(metadata.authorization_response_iss_parameter_supported).toBe(true);
      expect(metadata.client_id_metadata_document_supported).toBe(true);
      expect(metadata.jwks_uri).toBe(`${base}/.well-known/jwks.json`);
    }
    const prm = (await (await fetch(`${base}/.well-known/oauth-protected-resource/mcp`)).json()) as {
      authorization_servers: string[];
    };
    expect(prm.authorization_servers).toEqual([issuer]);
  });

  it('lets browser-based clients discover, register and redeem cross-origin (CORS without credentials)', async () => {
    const origin = 'http://localhost:6274';
    const metadata = await fetch(`${base}/.well-known/oauth-authorization-server`, { headers: { origin } });
    expect(metadata.headers.get('access-control-allow-origin')).toBe('*');
    const prm = await fetch(`${base}/.well-known/oauth-protected-resource/mcp`, { headers: { origin } });
    expect(prm.headers.get('access-control-allow-origin')).toBe('*');
    for (const path of ['/oauth/register', '/oauth/token', '/oauth/revoke']) {
      const preflight = await fetch(`${base}${path}`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type',
        },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
      expect(preflight.headers.get('access-control-allow-credentials')).toBeNull();
    }
    const token = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=refresh_token&client_id=nobody&refresh_token=x',
    });
    expect(token.status).toBe(401);
    expect(token.headers.get('access-control-allow-origin')).toBe('*');
    // The sign-in pages and the MCP endpoint keep their own rules.
    const page = await fetch(`${base}/oauth/authorize?client_id=x`, { headers: { origin } });
    expect(page.headers.get('access-control-allow-origin')).toBeNull();
  });

  // req: MCP-AUTH-REFRESH-ROTATION, RFC8707-2-AUDIENCE-RESTRICT, RFC9068-2.1-TYP, RFC9068-2.2-REQUIRED-CLAIMS, RFC9207-2-ISS, RFC6749-4.1.2-STATE, RFC6749-5.1-NO-STORE, RFC7009-2.1-REFRESH-REVOKES-GRANT
  it('runs the whole flow: register, sign in, consent, code, token, MCP call, refresh rotation, revocation', async () => {
    const client = await register();
    const { code, verifier, callback, pages } = await codeFor(client.client_id);
    expect(pages).toEqual(['login', 'consent']);
    expect(callback.searchParams.get('state')).toBe('st-1');
    expect(callback.searchParams.get('iss')).toBe(gw.gateway.urls.issuer);

    const tokenResponse = await exchange(client.client_id, code, verifier);
    expect(tokenResponse.status).toBe(200);
    expect(tokenResponse.headers.get('cache-control')).toBe('no-store');
    const tokens = (await tokenResponse.json()) as {
      access_token: string;
      refresh_token: string;
      token_type: string;
      expires_in: number;
    };
    expect(tokens.token_type).toBe('Bearer');
    expect(tokens.expires_in).toBe(300);
    const [header, payload] = tokens.access_token
      .split('.')
      .slice(0, 2)
      .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()));
    expect(header.typ).toBe('at+jwt');
    expect(payload.aud).toBe(resource);
    expect(payload.client_id).toBe(client.client_id);
    expect(payload.email).toBe('alice@example.com');
    expect(await mcpStatus(tokens.access_token)).toBe(200);

    const rotated = await refresh(client.client_id, tokens.refresh_token);
    expect(rotated.status).toBe(200);
    const second = (await rotated.json()) as { access_token: string; refresh_token: string };
    expect(second.refresh_token).not.toBe(tokens.refresh_token);
    expect(await mcpStatus(second.access_token)).toBe(200);

    const revoked = await form(`${base}/oauth/revoke`, {
      client_id: client.client_id,
      token: second.refresh_token,
    });
    expect(revoked.status).toBe(200);
    // Revoking the refresh token revokes the grant, so its access tokens stop working at once.
    expect(await mcpStatus(second.access_token)).toBe(401);
    expect((await refresh(client.client_id, second.refresh_token)).status).toBe(400);
  });

  it('remembers consent: a second authorization in the same browser skips both pages', async () => {
    const client = await register();
    const first = await codeFor(client.client_id);
    const again = await codeFor(client.client_id, first.jar);
    expect(again.pages).toEqual([]);
  });

  // req: RFC9700-4.14.2-REFRESH-ROTATION
  it('answers a retried refresh inside the grace window identically, and revokes the family on later reuse', async () => {
    const client = await register();
    const { code, verifier } = await codeFor(client.client_id);
    const tokens = (await (await exchange(client.client_id, code, verifier)).json()) as {
      refresh_token: string;
    };
    const [a, b] = await Promise.all([
      refresh(client.client_id, tokens.refresh_token),
      refresh(client.client_id, tokens.refresh_token),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const [bodyA, bodyB] = (await Promise.all([a.json(), b.json()])) as {
      refresh_token: string;
      access_token: string;
    }[];
    expect(bodyA).toEqual(bodyB);
    const next = (await (
      await refresh(client.client_id, (bodyA as { refresh_token: string }).refresh_token)
    ).json()) as {
      refresh_token: string;
      access_token: string;
    };
    // Generation 1 is now two rotations old: presenting it is reuse, which kills the whole family.
    const reuse = await refresh(client.client_id, tokens.refresh_token);
    expect(reuse.status).toBe(400);
    expect(((await reuse.json()) as { error: string }).error).toBe('invalid_grant');
    expect((await refresh(client.client_id, next.refresh_token)).status).toBe(400);
    expect(await mcpStatus(next.access_token)).toBe(401);
  });

  // req: RFC6749-4.1.2-CODE-SINGLE-USE
  it('treats a replayed code as an attack: invalid_grant, and the tokens it issued are revoked', async () => {
    const client = await register();
    const { code, verifier } = await codeFor(client.client_id);
    const tokens = (await (await exchange(client.client_id, code, verifier)).json()) as {
      access_token: string;
      refresh_token: string;
    };
    const replay = await exchange(client.client_id, code, verifier);
    expect(replay.status).toBe(400);
    expect(((await replay.json()) as { error: string }).error).toBe('invalid_grant');
    expect(await mcpStatus(tokens.access_token)).toBe(401);
    expect((await refresh(client.client_id, tokens.refresh_token)).status).toBe(400);
  });

  // req: RFC7636-S256, RFC9700-2.1.1-PKCE-ENFORCED, RFC6749-4.1.3-REDIRECT-URI-MATCH, RFC8707-2.2-TOKEN-REQUEST-RESOURCE
  it('refuses a wrong PKCE verifier, a different redirect_uri and a wrong resource', async () => {
    const client = await register();
    const wrongVerifier = await codeFor(client.client_id);
    const r1 = await exchange(client.client_id, wrongVerifier.code, pkce().verifier);
    expect(r1.status).toBe(400);
    expect(((await r1.json()) as { error: string }).error).toBe('invalid_grant');

    const wrongRedirect = await codeFor(client.client_id);
    const r2 = await exchange(client.client_id, wrongRedirect.code, wrongRedirect.verifier, {
      redirect_uri: 'http://127.0.0.1:1/other',
    });
    expect(((await r2.json()) as { error: string }).error).toBe('invalid_grant');

    const wrongResource = await codeFor(client.client_id);
    const r3 = await exchange(client.client_id, wrongResource.code, wrongResource.verifier, {
      resource: 'http://elsewhere.example/mcp',
    });
    expect(((await r3.json()) as { error: string }).error).toBe('invalid_target');
  });

  // req: MCP-AUTH-PKCE-REQUIRED, RFC6749-4.1.2.1-NO-REDIRECT-UNVERIFIED, RFC7636-4.4.1-CHALLENGE-REQUIRED, RFC8707-2-INVALID-TARGET, RFC9700-2.1.2-NO-IMPLICIT, RFC9207-2-ISS, RFC9700-4.11.2-NO-OPEN-REDIRECTOR
  it('answers authorization errors on the page before the client is validated, by redirect after (configured clients)', async () => {
    const client = await register();
    const { challenge } = pkce();
    const unknown = await fetch(authorizeUrl('no-such-client', challenge), { redirect: 'manual' });
    expect(unknown.status).toBe(400);
    expect(unknown.headers.get('content-type')).toContain('text/html');
    expect(unknown.headers.get('x-frame-options')).toBe('DENY');

    const mismatch = await fetch(
      authorizeUrl(client.client_id, challenge, { redirect_uri: 'http://127.0.0.1:9/evil' }),
      {
        redirect: 'manual',
      },
    );
    expect(mismatch.status).toBe(400);
    expect(mismatch.headers.get('location')).toBeNull();

    const cases: [Record<string, string>, string][] = [
      [{ code_challenge_method: 'plain' }, 'invalid_request'],
      [{ resource: 'http://elsewhere.example/mcp' }, 'invalid_target'],
      [{ response_type: 'token' }, 'unsupported_response_type'],
    ];
    for (const [extra, error] of cases) {
      // A client that registered itself: the page, until the person has interacted (RFC 9700 §4.11.2).
      const page = await fetch(authorizeUrl(client.client_id, challenge, extra), { redirect: 'manual' });
      expect(page.status).toBe(400);
      expect(page.headers.get('location')).toBeNull();
      expect(await page.text()).toContain(`data-testid="message-detail">${error}</pre>`);

      const response = await fetch(authorizeUrl(CONFIGURED_CLIENT, challenge, extra), { redirect: 'manual' });
      expect(response.status).toBe(302);
      const location = new URL(response.headers.get('location') as string);
      expect(location.origin + location.pathname).toBe(REDIRECT);
      expect(location.searchParams.get('error')).toBe(error);
      expect(location.searchParams.get('state')).toBe('st-1');
      expect(location.searchParams.get('iss')).toBe(gw.gateway.urls.issuer);
    }
    const missingPkce = authorizeUrl(CONFIGURED_CLIENT, challenge);
    missingPkce.searchParams.delete('code_challenge');
    const noPkce = new URL(
      (await fetch(missingPkce, { redirect: 'manual' })).headers.get('location') as string,
    );
    expect(noPkce.searchParams.get('error')).toBe('invalid_request');
  });

  // req: RFC6749-10.12-CSRF, RFC9700-4.12-NO-307
  it('refuses a consent POST without the CSRF token or from another browser, and issues no code', async () => {
    const client = await register();
    const { challenge } = pkce();
    const stop = await signIn(authorizeUrl(client.client_id, challenge), {
      username: 'alice',
      password: PASSWORD,
      stopAt: 'consent',
    });
    if (!('kind' in stop)) throw new Error('expected the consent page');
    const consent = formOf(stop.html, 'consent-form');
    const post = (fields: Record<string, string>, cookie: string) =>
      fetch(new URL(consent.action, stop.url), {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
        body: new URLSearchParams(fields).toString(),
      });
    const forged = await post({ decision: 'approve' }, stop.jar.header());
    expect(forged.status).toBe(400);
    expect(forged.headers.get('location')).toBeNull();
    const sessionOnly = [...stop.jar.cookies]
      .filter(([name]) => name.includes('session'))
      .map(([n, v]) => `${n}=${v}`)
      .join('; ');
    const otherBrowser = await post({ ...consent.fields, decision: 'approve' }, sessionOnly);
    expect(otherBrowser.status).toBe(400);
    // The genuine form still works afterwards: nothing was consumed by the forgeries.
    const genuine = await post({ ...consent.fields, decision: 'approve' }, stop.jar.header());
    expect(genuine.status).toBe(303);
    expect(new URL(genuine.headers.get('location') as string).searchParams.get('code')).toBeTruthy();
  });

  it('throttles password guessing per username', async () => {
    const client = await register();
    const { challenge } = pkce();
    const stop = await signIn(authorizeUrl(client.client_id, challenge), {
      username: 'x',
      password: 'x',
      stopAt: 'login',
    });
    if (!('kind' in stop)) throw new Error('expected the login page');
    const login = formOf(stop.html, 'login-form');
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 6; attempt += 1) {
      const response = await fetch(new URL(login.action, stop.url), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: stop.jar.header() },
        body: new URLSearchParams({
          ...login.fields,
          username: 'bob',
          password: `guess-${attempt}`,
        }).toString(),
      });
      statuses.push(response.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
  });

  // req: RFC6749-2.3.1-BASIC, RFC6749-5.2-BASIC-401
  it('authenticates confidential clients and serves introspection only to them', async () => {
    const client = await register({ token_endpoint_auth_method: 'client_secret_basic' });
    expect(client.client_secret).toBeTruthy();
    const basic = `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret as string)}`).toString('base64')}`;
    const { code, verifier } = await codeFor(client.client_id);
    const wrong = await form(
      `${base}/oauth/token`,
      { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT },
      { authorization: `Basic ${Buffer.from(`${client.client_id}:nope`).toString('base64')}` },
    );
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Basic/);

    const again = await codeFor(client.client_id);
    const ok = await form(
      `${base}/oauth/token`,
      {
        grant_type: 'authorization_code',
        code: again.code,
        code_verifier: again.verifier,
        redirect_uri: REDIRECT,
      },
      { authorization: basic },
    );
    expect(ok.status).toBe(200);
    const tokens = (await ok.json()) as { access_token: string };
    const active = await form(
      `${base}/oauth/introspect`,
      { token: tokens.access_token },
      { authorization: basic },
    );
    expect(active.status).toBe(200);
    expect(await active.json()).toMatchObject({ active: true, client_id: client.client_id, aud: resource });
    const garbage = await form(
      `${base}/oauth/introspect`,
      { token: 'not-a-token' },
      { authorization: basic },
    );
    expect(await garbage.json()).toEqual({ active: false });

    const publicClient = await register();
    const refused = await form(`${base}/oauth/introspect`, {
      token: tokens.access_token,
      client_id: publicClient.client_id,
    });
    expect(refused.status).toBe(401);
  });

  it('rate-limits dynamic registration per IP with an OAuth-shaped 429 and Retry-After', async () => {
    const limited = await startTestGateway({
      authorizationServer: { dynamicRegistration: { perIpPerHour: 1 } },
    });
    try {
      const body = JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' });
      const send = () =>
        fetch(`${limited.gateway.urls.publicUrl}/oauth/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
      expect((await send()).status).toBe(201);
      const refused = await send();
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(refused.headers.get('cache-control')).toBe('no-store');
      expect(await refused.json()).toMatchObject({
        error: 'temporarily_unavailable',
        code: 'ERR_RATE_LIMITED',
      });
    } finally {
      await limited.close();
    }
  });

  // req: RFC6749-3.1-NO-REPEATED-PARAMETERS, RFC9700-2.4-NO-PASSWORD-GRANT
  it('answers malformed token requests with RFC errors', async () => {
    const client = await register();
    const json = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(json.status).toBe(400);
    expect(((await json.json()) as { error: string }).error).toBe('invalid_request');
    const grant = await form(`${base}/oauth/token`, { grant_type: 'password', client_id: client.client_id });
    expect(((await grant.json()) as { error: string }).error).toBe('unsupported_grant_type');
    const unknown = await form(`${base}/oauth/token`, {
      grant_type: 'authorization_code',
      client_id: 'nobody',
      code: 'x',
      code_verifier: 'y',
    });
    expect(unknown.status).toBe(401);
    const big = await form(`${base}/oauth/token`, {
      grant_type: 'authorization_code',
      client_id: client.client_id,
      code: 'x'.repeat(20_000),
    });
    expect(big.status).toBe(400);
    const repeated = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=refresh_token&grant_type=authorization_code&client_id=${client.client_id}`,
    });
    expect(((await repeated.json()) as { error: string }).error).toBe('invalid_request');
  });

  // req: RFC7009-2.2-200-FOR-UNKNOWN, RFC7009-2.1-HINT-FALLBACK
  it('revocation answers 200 for unknown tokens, and a wrong token_type_hint does not stop the search', async () => {
    const client = await register();
    for (const token of ['not-a-token', randomBytes(32).toString('base64url')]) {
      const unknown = await form(`${base}/oauth/revoke`, { client_id: client.client_id, token });
      expect(unknown.status).toBe(200);
      expect(await unknown.text()).toBe('');
    }
    const { code, verifier } = await codeFor(client.client_id);
    const tokens = (await (await exchange(client.client_id, code, verifier)).json()) as {
      access_token: string;
      refresh_token: string;
    };
    const hinted = await form(`${base}/oauth/revoke`, {
      client_id: client.client_id,
      token: tokens.refresh_token,
      token_type_hint: 'access_token',
    });
    expect(hinted.status).toBe(200);
    const after = await refresh(client.client_id, tokens.refresh_token);
    expect(((await after.json()) as { error: string }).error).toBe('invalid_grant');
    expect(await mcpStatus(tokens.access_token)).toBe(401);
  });
});
