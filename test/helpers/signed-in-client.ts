import { expect } from 'vitest';
import type { TestGateway } from './gateway.js';
import { postMcp } from './mcp-http.js';
import { authorizeUrl, type CookieJar, pkce, signIn } from './oauth.js';

export const REDIRECT_URI = 'http://127.0.0.1:53682/callback';

export interface Tokens {
  readonly access_token: string;
  readonly refresh_token: string;
}

/** Where a client finds the gateway: its public origin and its MCP endpoint (the RFC 8707 resource). */
export interface GatewayAt {
  readonly base: string;
  readonly resource: string;
}

/** Where an in-process test gateway answers. */
export function gatewayAt(gw: TestGateway): GatewayAt {
  return { base: gw.gateway.urls.publicUrl, resource: gw.gateway.urls.resource };
}

/** A public MCP client as it registers itself (RFC 7591) at the gateway whose origin is `base`. */
export async function registerClient(base: string, name = 'Admin test client'): Promise<string> {
  const registered = await fetch(`${base}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none',
      client_name: name,
    }),
  });
  expect(registered.status).toBe(201);
  return ((await registered.json()) as { client_id: string }).client_id;
}

export function tokenRequest(base: string, fields: Record<string, string>): Promise<Response> {
  return fetch(`${base}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
}

/**
 * The person signs in at the gateway in a browser (login form, consent) for `clientId`, and the client
 * redeems the code: what every MCP client does the first time.
 */
export async function signInAndRedeem(
  gateway: GatewayAt,
  clientId: string,
  user: { readonly username: string; readonly password: string },
): Promise<{ tokens: Tokens; jar: CookieJar }> {
  const { verifier, challenge } = pkce();
  const result = await signIn(
    authorizeUrl(gateway.base, {
      clientId,
      redirectUri: REDIRECT_URI,
      challenge,
      resource: gateway.resource,
    }),
    user,
  );
  const code = result.callback.searchParams.get('code');
  expect(code, String(result.callback)).toMatch(/^ghc_/);
  const redeemed = await tokenRequest(gateway.base, {
    grant_type: 'authorization_code',
    client_id: clientId,
    code: code as string,
    code_verifier: verifier,
    redirect_uri: REDIRECT_URI,
  });
  expect(redeemed.status).toBe(200);
  return { tokens: (await redeemed.json()) as Tokens, jar: result.jar };
}

/**
 * A new MCP client's first connection: it registers itself (named `clientName`), then `user` signs in
 * with it and the client redeems the code.
 */
export async function registerAndSignIn(
  gateway: GatewayAt,
  user: { readonly username: string; readonly password: string },
  clientName?: string,
): Promise<{ clientId: string; tokens: Tokens; jar: CookieJar }> {
  const clientId = await registerClient(gateway.base, clientName);
  return { clientId, ...(await signInAndRedeem(gateway, clientId, user)) };
}

/** Opens a 2025-era session on the MCP endpoint and calls a tool in it; returns the session id. */
export async function openSession(mcpUrl: string | URL, accessToken: string): Promise<string> {
  const opened = await postMcp(mcpUrl, accessToken, {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: {
      protocolVersion: '2025-11-25',
      capabilities: {},
      clientInfo: { name: 'admin-test', version: '1' },
    },
  });
  expect(opened.status).toBe(200);
  await opened.text();
  const sessionId = opened.headers.get('mcp-session-id');
  expect(sessionId).toBeTruthy();
  const call = await ping(mcpUrl, accessToken, sessionId as string);
  expect(call.status).toBe(200);
  await call.text();
  return sessionId as string;
}

/** One request in the session (or, without a session id, a stateless one). */
export function ping(mcpUrl: string | URL, accessToken: string, sessionId?: string): Promise<Response> {
  return postMcp(mcpUrl, accessToken, { jsonrpc: '2.0', id: 7, method: 'ping' }, sessionId);
}

/** The refresh token's answer: the status and the OAuth error code, if any. */
export async function refreshOutcome(
  base: string,
  clientId: string,
  refreshToken: string,
): Promise<{ status: number; error?: string }> {
  const refreshed = await tokenRequest(base, {
    grant_type: 'refresh_token',
    client_id: clientId,
    refresh_token: refreshToken,
  });
  const body = (await refreshed.json()) as { error?: string };
  return { status: refreshed.status, ...(body.error !== undefined && { error: body.error }) };
}
