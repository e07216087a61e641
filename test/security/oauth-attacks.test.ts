import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/ops/clock.js';
import { fetchFrom } from '../helpers/from-address.js';
import type { TestGateway } from '../helpers/gateway.js';
import { CookieJar, formOf, type PageStop, signIn } from '../helpers/oauth.js';
import { challengeError, type EventLog, mcpRequest, startRecorded } from './helpers/harness.js';
import {
  addAccount,
  authorizeUrl,
  codeFor,
  oauthError,
  oauthPost,
  PASSWORD,
  pkce,
  REDIRECT,
  redeem,
  refresh,
  registerClient,
  signInAndRedeem,
  type Tokens,
} from './helpers/oauth-client.js';

/**
 * RFC 9700 (OAuth 2.0 security BCP) and OAuth 2.1 attacks on the authorization server, each performed
 * through its real endpoints and pages. The defended outcome is the RFC error code and status, the audit
 * event, and the state left behind: a replayed code or a reused refresh token takes the whole grant down
 * (its access tokens refused at the MCP endpoint), a refused attempt takes nothing from the honest user.
 */

const CONFIDENTIAL_SECRET = randomBytes(32).toString('base64url');
const PING = { jsonrpc: '2.0', id: 1, method: 'ping' };

/** Whether the MCP endpoint still admits `accessToken` (a 2025-era ping without session: 400 once admitted). */
async function admits(gw: TestGateway, accessToken: string): Promise<boolean> {
  const response = await mcpRequest(gw, accessToken, PING);
  await response.text();
  if (response.status === 401) {
    expect(challengeError(response)).toBe('invalid_token');
    return false;
  }
  expect(response.status).toBe(400);
  return true;
}

describe('authorization-code and refresh-token attacks (RFC 9700)', () => {
  let gw: TestGateway;
  let log: EventLog;

  beforeAll(async () => {
    ({ gw, log } = await startRecorded({
      store: { kind: 'memory' },
      auth: { scopesSupported: ['notes:read', 'notes:write'] },
      authorizationServer: {
        clients: [
          { clientId: 'configured-app', redirectUris: [REDIRECT], clientName: 'Configured app' },
          {
            clientId: 'confidential-app',
            clientSecret: CONFIDENTIAL_SECRET,
            redirectUris: [REDIRECT],
            tokenEndpointAuthMethod: 'client_secret_post',
          },
        ],
        dynamicRegistration: { perIpPerHour: 1000 },
        loginThrottle: { perUsernameAndAddress: 3, perAddress: 50, windowMs: 15 * 60_000 },
      },
    }));
    await addAccount(gw, 'alice');
    await addAccount(gw, 'bob');
  });
  afterAll(async () => {
    await gw?.close();
  });

  // req: MCP-AUTH-PKCE-REQUIRED, RFC7636-4.4.1-CHALLENGE-REQUIRED, RFC9207-2-ISS
  it('PKCE is mandatory and S256 only: missing or plain challenges are refused at authorize', async () => {
    const { verifier } = pkce();
    for (const [extra, error] of [
      [{ code_challenge: '' }, 'invalid_request'],
      [{ code_challenge: verifier, code_challenge_method: 'plain' }, 'invalid_request'],
      [{ code_challenge_method: 'S512' }, 'invalid_request'],
    ] as const) {
      const url = authorizeUrl(gw, 'configured-app', pkce().challenge, extra);
      if (extra.code_challenge === '') url.searchParams.delete('code_challenge');
      log.clear();
      const response = await fetch(url, { redirect: 'manual' });
      expect(response.status).toBe(302);
      const location = new URL(response.headers.get('location') ?? '');
      expect(`${location.origin}${location.pathname}`).toBe(REDIRECT);
      expect(location.searchParams.get('error')).toBe(error);
      expect(location.searchParams.get('iss')).toBe(gw.gateway.urls.issuer); // RFC 9207 mix-up defence
      expect(location.searchParams.get('code')).toBeNull();
      expect(log.of('oauth.authorize')).toMatchObject([{ outcome: 'failure', error }]);
    }
  });

  // req: RFC7636-S256, RFC9700-2.1.1-PKCE-ENFORCED, RFC6749-4.1.2-CODE-SINGLE-USE
  it('a stolen code without the verifier is burnt, and the honest redemption afterwards is a replay', async () => {
    const clientId = await registerClient(gw);
    const { code, verifier } = await codeFor(gw, clientId, { username: 'alice' });
    log.clear();
    const stolen = await oauthPost(gw, {
      grant_type: 'authorization_code',
      client_id: clientId,
      code,
      code_verifier: pkce().verifier,
      redirect_uri: REDIRECT,
    });
    expect(stolen.status).toBe(400);
    expect(await oauthError(stolen)).toBe('invalid_grant');
    expect(log.of('oauth.token.authorization_code')).toMatchObject([
      { outcome: 'failure', reason: 'pkce_mismatch' },
    ]);
    const honest = await redeem(gw, clientId, code, verifier);
    expect(honest.status).toBe(400);
    expect(await oauthError(honest)).toBe('invalid_grant');
    expect(log.of('oauth.token.code_replayed')).toHaveLength(1);
    expect(log.of('oauth.token.issued')).toEqual([]);
  });

  // req: RFC6749-4.1.2-CODE-SINGLE-USE
  it('a replayed code revokes the grant it issued: access and refresh tokens refused from that moment', async () => {
    const clientId = await registerClient(gw);
    const { code, verifier } = await codeFor(gw, clientId, { username: 'alice' });
    const first = await redeem(gw, clientId, code, verifier);
    expect(first.status).toBe(200);
    const tokens = (await first.json()) as Tokens;
    expect(await admits(gw, tokens.access_token)).toBe(true);
    log.clear();
    const replay = await redeem(gw, clientId, code, verifier);
    expect(replay.status).toBe(400);
    expect(await oauthError(replay)).toBe('invalid_grant');
    expect(log.of('oauth.token.code_replayed')).toMatchObject([{ reason: 'code_replayed', clientId }]);
    expect(await admits(gw, tokens.access_token)).toBe(false);
    expect(log.of('guard.refused').at(-1)?.reason).toBe('token_revoked');
    const refreshed = await refresh(gw, clientId, tokens.refresh_token);
    expect(refreshed.status).toBe(400);
    expect(await oauthError(refreshed)).toBe('invalid_grant');
  });

  // req: RFC6749-4.1.3-CODE-CLIENT
  it("a code injected into another client's token request is refused (code injection)", async () => {
    const victim = await registerClient(gw);
    const attacker = await registerClient(gw, { client_name: 'Attacker' });
    const { code, verifier } = await codeFor(gw, victim, { username: 'alice' });
    log.clear();
    const injected = await redeem(gw, attacker, code, verifier);
    expect(injected.status).toBe(400);
    expect(await oauthError(injected)).toBe('invalid_grant');
    expect(log.of('oauth.token.authorization_code')).toMatchObject([{ reason: 'client_mismatch' }]);
    expect(log.of('oauth.token.issued')).toEqual([]);
  });

  // req: MCP-AUTH-EXACT-REDIRECT-URI, RFC9700-2.1-EXACT-REDIRECT, RFC6749-4.1.2.1-NO-REDIRECT-UNVERIFIED
  it('redirect_uri must match exactly at authorize: near misses get an error page, never a redirect', async () => {
    const clientId = await registerClient(gw);
    const attempts = [
      'https://attacker.example/callback',
      `${REDIRECT}/`,
      `${REDIRECT}x`,
      `${REDIRECT}?next=https://attacker.example`,
      'http://127.0.0.1:53683/callback',
      'http://127.0.0.1:53682@attacker.example/callback',
      'http://localhost:53682/callback',
      'HTTP://127.0.0.1:53682/callback',
    ];
    for (const redirect of attempts) {
      log.clear();
      const response = await fetch(authorizeUrl(gw, clientId, pkce().challenge, { redirect_uri: redirect }), {
        redirect: 'manual',
      });
      expect({ redirect, status: response.status, location: response.headers.get('location') }).toEqual({
        redirect,
        status: 400,
        location: null,
      });
      expect(response.headers.get('content-type')).toMatch(/text\/html/);
      await response.text();
      expect(log.of('oauth.authorize')).toMatchObject([{ outcome: 'failure', error: 'invalid_request' }]);
    }
  });

  // req: RFC6749-4.1.3-REDIRECT-URI-MATCH
  it('redirect_uri at the token endpoint must be the one the code was issued for', async () => {
    const clientId = await registerClient(gw, { redirect_uris: [REDIRECT, 'http://127.0.0.1:53682/other'] });
    const { code, verifier } = await codeFor(gw, clientId, { username: 'alice' });
    log.clear();
    const response = await oauthPost(gw, {
      grant_type: 'authorization_code',
      client_id: clientId,
      code,
      code_verifier: verifier,
      redirect_uri: 'http://127.0.0.1:53682/other',
    });
    expect(response.status).toBe(400);
    expect(await oauthError(response)).toBe('invalid_grant');
    expect(log.of('oauth.token.authorization_code')).toMatchObject([{ reason: 'redirect_uri_mismatch' }]);
  });

  // req: RFC8707-2-INVALID-TARGET, RFC8707-2.2-TOKEN-REQUEST-RESOURCE
  it('a resource indicator for another server is refused (RFC 8707 invalid_target)', async () => {
    const response = await fetch(
      authorizeUrl(gw, 'configured-app', pkce().challenge, { resource: 'https://other-mcp.example/mcp' }),
      { redirect: 'manual' },
    );
    expect(response.status).toBe(302);
    expect(new URL(response.headers.get('location') ?? '').searchParams.get('error')).toBe('invalid_target');
    const { clientId, tokens } = await signInAndRedeem(gw, { username: 'alice' });
    const widened = await oauthPost(gw, {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: tokens.refresh_token,
      resource: 'https://other-mcp.example/mcp',
    });
    expect(widened.status).toBe(400);
    expect(await oauthError(widened)).toBe('invalid_target');
  });

  // req: RFC6749-6-REFRESH-SCOPE
  it('a refresh may not widen the scope (RFC 6749 §6)', async () => {
    const clientId = await registerClient(gw);
    const { code, verifier } = await codeFor(gw, clientId, {
      username: 'alice',
      extra: { scope: 'notes:read' },
    });
    const tokens = (await (await redeem(gw, clientId, code, verifier)).json()) as Tokens;
    expect(tokens.scope).toBe('notes:read');
    log.clear();
    const widened = await oauthPost(gw, {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: tokens.refresh_token,
      scope: 'notes:read notes:write',
    });
    expect(widened.status).toBe(400);
    expect(await oauthError(widened)).toBe('invalid_scope');
    expect(log.of('oauth.token.refresh')).toMatchObject([{ outcome: 'failure', reason: 'scope_widened' }]);
    // The refused attempt cost the honest client nothing.
    expect((await refresh(gw, clientId, tokens.refresh_token)).status).toBe(200);
  });

  // req: RFC6749-6-REFRESH-CLIENT
  it("another client presenting a stolen refresh token gets nothing, and the victim's family lives on", async () => {
    const { clientId, tokens } = await signInAndRedeem(gw, { username: 'alice' });
    const attacker = await registerClient(gw, { client_name: 'Attacker' });
    log.clear();
    const stolen = await refresh(gw, attacker, tokens.refresh_token);
    expect(stolen.status).toBe(400);
    expect(await oauthError(stolen)).toBe('invalid_grant');
    expect(log.of('oauth.token.refresh')).toMatchObject([{ reason: 'client_mismatch', clientId: attacker }]);
    expect(await admits(gw, tokens.access_token)).toBe(true);
    expect((await refresh(gw, clientId, tokens.refresh_token)).status).toBe(200);
  });

  // req: RFC9700-4.14.2-REFRESH-ROTATION, MCP-AUTH-REFRESH-ROTATION
  it('refresh-token reuse revokes the whole family, access tokens included (RFC 9700 §4.14.2)', async () => {
    const { clientId, tokens } = await signInAndRedeem(gw, { username: 'alice' });
    const second = (await (await refresh(gw, clientId, tokens.refresh_token)).json()) as Tokens;
    // A retry of the token just replaced, inside the grace window, gets the identical answer: no new pair.
    log.clear();
    const retried = (await (await refresh(gw, clientId, tokens.refresh_token)).json()) as Tokens;
    expect(retried).toEqual(second);
    expect(log.of('oauth.token.refresh_retried')).toHaveLength(1);
    const third = (await (await refresh(gw, clientId, second.refresh_token)).json()) as Tokens;
    expect(await admits(gw, third.access_token)).toBe(true);
    // The first token again, two generations old: the attacker's copy. Everything of the family dies.
    log.clear();
    const reused = await refresh(gw, clientId, tokens.refresh_token);
    expect(reused.status).toBe(400);
    expect(await oauthError(reused)).toBe('invalid_grant');
    expect(log.of('oauth.token.refresh_reuse')).toMatchObject([
      { reason: 'refresh_token_reused', clientId, detail: { presentedGeneration: 1, currentGeneration: 3 } },
    ]);
    expect(await admits(gw, third.access_token)).toBe(false);
    expect(await admits(gw, tokens.access_token)).toBe(false);
    const current = await refresh(gw, clientId, third.refresh_token);
    expect(current.status).toBe(400);
    expect(await oauthError(current)).toBe('invalid_grant');
  });

  // req: RFC7009-2.1-OWN-TOKENS
  it('revocation (RFC 7009): another client cannot revoke; the owner can, and the token dies at once', async () => {
    const { clientId, tokens } = await signInAndRedeem(gw, { username: 'alice' });
    const attacker = await registerClient(gw, { client_name: 'Attacker' });
    const foreign = await oauthPost(
      gw,
      { client_id: attacker, token: tokens.refresh_token },
      { path: '/oauth/revoke' },
    );
    expect(foreign.status).toBe(400);
    expect(await oauthError(foreign)).toBe('unauthorized_client');
    expect(await admits(gw, tokens.access_token)).toBe(true);

    log.clear();
    const revokeAccess = await oauthPost(
      gw,
      { client_id: clientId, token: tokens.access_token, token_type_hint: 'access_token' },
      { path: '/oauth/revoke' },
    );
    expect(revokeAccess.status).toBe(200);
    expect(log.of('oauth.revoke.access_token')).toHaveLength(1);
    expect(await admits(gw, tokens.access_token)).toBe(false);
    expect(log.of('guard.refused').at(-1)?.reason).toBe('token_revoked');

    const revoked = await oauthPost(
      gw,
      { client_id: clientId, token: tokens.refresh_token },
      { path: '/oauth/revoke' },
    );
    expect(revoked.status).toBe(200);
    expect(log.of('oauth.revoke.refresh_token')).toHaveLength(1);
    const after = await refresh(gw, clientId, tokens.refresh_token);
    expect(await oauthError(after)).toBe('invalid_grant');
  });

  // req: RFC6749-5.2-BASIC-401
  it('client authentication: a wrong secret is invalid_client; a public client cannot introspect', async () => {
    const wrong = await oauthPost(
      gw,
      { client_id: 'confidential-app', client_secret: 'x'.repeat(43), token: 'whatever' },
      { path: '/oauth/introspect' },
    );
    expect(wrong.status).toBe(401);
    expect(await oauthError(wrong)).toBe('invalid_client');
    const basic = await oauthPost(
      gw,
      { grant_type: 'refresh_token', refresh_token: 'ghr_x' },
      { headers: { authorization: `Basic ${Buffer.from('confidential-app:wrong').toString('base64')}` } },
    );
    expect(basic.status).toBe(401);
    expect(basic.headers.get('www-authenticate')).toMatch(/^Basic /);
    const { clientId, tokens } = await signInAndRedeem(gw, { username: 'alice' });
    const introspect = await oauthPost(
      gw,
      { client_id: clientId, token: tokens.access_token },
      { path: '/oauth/introspect' },
    );
    expect(introspect.status).toBe(401);
    expect(await oauthError(introspect)).toBe('invalid_client');
  });

  // req: RFC6749-10.12-CSRF
  it('login CSRF: a sign-in form posted without its token, or from another browser, signs nobody in', async () => {
    const clientId = await registerClient(gw);
    const stop = (await signIn(authorizeUrl(gw, clientId, pkce().challenge), {
      username: 'alice',
      password: PASSWORD,
      stopAt: 'login',
    })) as PageStop;
    const form = formOf(stop.html, 'login-form');
    const action = new URL(form.action, stop.url).href;
    const post = (fields: Record<string, string>, jar: CookieJar) =>
      fetch(action, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.header() },
        body: new URLSearchParams({ ...fields, username: 'alice', password: PASSWORD }).toString(),
      });
    log.clear();
    const forged = await post({ ...form.fields, csrf: 'forged' }, stop.jar);
    expect(forged.status).toBe(400);
    expect(forged.headers.getSetCookie()).toEqual([]);
    const elsewhere = await post(form.fields, new CookieJar());
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.headers.get('location')).toBeNull();
    expect(log.of('login')).toMatchObject([
      { outcome: 'failure', reason: 'csrf_or_expired' },
      { outcome: 'failure', reason: 'csrf_or_expired' },
    ]);
  });

  // req: RFC6749-10.12-CSRF
  it('consent CSRF: an approval posted from another browser issues no code', async () => {
    const clientId = await registerClient(gw);
    const stop = (await signIn(authorizeUrl(gw, clientId, pkce().challenge), {
      username: 'bob',
      password: PASSWORD,
      stopAt: 'consent',
    })) as PageStop;
    const form = formOf(stop.html, 'consent-form');
    log.clear();
    const approve = await fetch(new URL(form.action, stop.url), {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: new CookieJar().header() },
      body: new URLSearchParams({ ...form.fields, decision: 'approve' }).toString(),
    });
    expect(approve.status).toBe(400);
    expect(approve.headers.get('location')).toBeNull();
    expect(log.of('consent')).toMatchObject([{ outcome: 'failure', reason: 'csrf_or_expired' }]);
    expect(log.of('oauth.authorize.code_issued')).toEqual([]);
  });

  it('password guessing is throttled per username and address, without locking the person out', async () => {
    const clientId = await registerClient(gw);
    log.clear();
    let last: Response | undefined;
    for (let attempt = 0; attempt < 4; attempt += 1) {
      const stop = (await signIn(authorizeUrl(gw, clientId, pkce().challenge), {
        username: 'bob',
        password: PASSWORD,
        stopAt: 'login',
      })) as PageStop;
      const form = formOf(stop.html, 'login-form');
      last = await fetch(new URL(form.action, stop.url), {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: stop.jar.header() },
        body: new URLSearchParams({
          ...form.fields,
          username: 'bob',
          password: `wrong guess ${attempt}`,
        }).toString(),
      });
      await last.text();
    }
    expect(last?.status).toBe(429);
    expect(Number(last?.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(log.of('login').map((event) => event.reason)).toEqual([
      'invalid_credentials',
      'invalid_credentials',
      'invalid_credentials',
      'throttled',
    ]);
    // The real bob, from his own machine, still signs in.
    const fromBob = fetchFrom('127.0.0.2');
    const { verifier, challenge } = pkce();
    const result = await signIn(authorizeUrl(gw, clientId, challenge), {
      username: 'bob',
      password: PASSWORD,
      fetch: fromBob,
    });
    const code = result.callback.searchParams.get('code') as string;
    expect((await redeem(gw, clientId, code, verifier)).status).toBe(200);
  });
});

describe('refresh-token reuse after the grace window (injected clock)', () => {
  const clock = createManualClock(Date.now());
  let gw: TestGateway;
  let log: EventLog;
  beforeAll(async () => {
    ({ gw, log } = await startRecorded(
      { store: { kind: 'memory' }, authorizationServer: { refreshGraceSeconds: 30 } },
      { clock },
    ));
    await addAccount(gw, 'carol');
  });
  afterAll(async () => {
    await gw?.close();
  });

  // req: RFC9700-4.14.2-REFRESH-ROTATION
  it('a retry 31 s after rotation is a reuse: the family is revoked, the rotated pair with it', async () => {
    const { clientId, tokens } = await signInAndRedeem(gw, { username: 'carol' });
    const rotated = (await (await refresh(gw, clientId, tokens.refresh_token)).json()) as Tokens;
    clock.advance(31_000);
    log.clear();
    const late = await refresh(gw, clientId, tokens.refresh_token);
    expect(late.status).toBe(400);
    expect(await oauthError(late)).toBe('invalid_grant');
    expect(log.of('oauth.token.refresh_reuse')).toHaveLength(1);
    expect(log.of('oauth.token.refresh_retried')).toEqual([]);
    expect(await admits(gw, rotated.access_token)).toBe(false);
    expect(await oauthError(await refresh(gw, clientId, rotated.refresh_token))).toBe('invalid_grant');
  });
});
