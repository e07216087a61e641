import { createHash, randomBytes } from 'node:crypto';
import type { TestGateway } from '../../helpers/gateway.js';
import { type CookieJar, type SignInResult, signIn } from '../../helpers/oauth.js';

/**
 * A public OAuth client playing by the rules (RFC 7591 registration, PKCE S256, RFC 8707 resource): the
 * honest half of every OAuth attack, and the attacker's starting point.
 */

export const PASSWORD = 'correct horse battery staple';
export const REDIRECT = 'http://127.0.0.1:53682/callback';

export interface Tokens {
  readonly access_token: string;
  readonly refresh_token: string;
  readonly expires_in: number;
  readonly token_type: string;
  readonly scope?: string;
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export function baseOf(gw: TestGateway): string {
  return gw.gateway.urls.publicUrl;
}

/** RFC 7591 registration; returns the answer (201 with `client_id`, or the error). */
export function registerRaw(gw: TestGateway, metadata: Record<string, unknown>): Promise<Response> {
  return fetch(`${baseOf(gw)}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(metadata),
  });
}

/** Registers a public client for `redirectUris` and returns its id. */
export async function registerClient(gw: TestGateway, extra: Record<string, unknown> = {}): Promise<string> {
  const response = await registerRaw(gw, {
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'none',
    client_name: 'Battery client',
    ...extra,
  });
  if (response.status !== 201) throw new Error(`registration answered ${response.status}`);
  return ((await response.json()) as { client_id: string }).client_id;
}

export function authorizeUrl(
  gw: TestGateway,
  clientId: string,
  challenge: string,
  extra: Record<string, string> = {},
): URL {
  const url = new URL(`${baseOf(gw)}/oauth/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    resource: gw.gateway.urls.resource,
    state: 'battery-state',
    ...extra,
  }).toString();
  return url;
}

/** A form POST to an OAuth endpoint (`/oauth/token` by default). */
export function oauthPost(
  gw: TestGateway,
  fields: Record<string, string>,
  options: { path?: string; headers?: Record<string, string>; fetch?: typeof fetch } = {},
): Promise<Response> {
  return (options.fetch ?? fetch)(`${baseOf(gw)}${options.path ?? '/oauth/token'}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...options.headers },
    body: new URLSearchParams(fields).toString(),
  });
}

export async function oauthError(response: Response): Promise<string | undefined> {
  return ((await response.json()) as { error?: string }).error;
}

/** Creates a local account on the running gateway. */
export async function addAccount(gw: TestGateway, username: string, password = PASSWORD): Promise<void> {
  const accounts = gw.gateway.authorizationServer?.accounts;
  if (accounts === undefined) throw new Error('no local accounts');
  await accounts.add({ username, password });
}

/** Signs `username` in through the pages and returns the code at the callback (not yet redeemed). */
export async function codeFor(
  gw: TestGateway,
  clientId: string,
  options: {
    username: string;
    password?: string;
    jar?: CookieJar;
    extra?: Record<string, string>;
    /** The browser's network (`fetchFrom('127.0.0.5')`: another address). */
    fetch?: typeof fetch;
  },
): Promise<{ code: string; verifier: string; result: SignInResult }> {
  const { verifier, challenge } = pkce();
  const result = await signIn(authorizeUrl(gw, clientId, challenge, options.extra), {
    username: options.username,
    password: options.password ?? PASSWORD,
    ...(options.jar !== undefined && { jar: options.jar }),
    ...(options.fetch !== undefined && { fetch: options.fetch }),
  });
  const code = result.callback.searchParams.get('code');
  if (code === null) throw new Error(`no code at the callback: ${result.callback.href}`);
  return { code, verifier, result };
}

export function redeem(gw: TestGateway, clientId: string, code: string, verifier: string): Promise<Response> {
  return oauthPost(gw, {
    grant_type: 'authorization_code',
    client_id: clientId,
    code,
    code_verifier: verifier,
    redirect_uri: REDIRECT,
  });
}

export function refresh(gw: TestGateway, clientId: string, refreshToken: string): Promise<Response> {
  return oauthPost(gw, { grant_type: 'refresh_token', client_id: clientId, refresh_token: refreshToken });
}

/** The whole honest flow: register (unless `clientId`), sign in, consent, redeem. */
export async function signInAndRedeem(
  gw: TestGateway,
  options: { username: string; password?: string; clientId?: string; jar?: CookieJar; fetch?: typeof fetch },
): Promise<{ clientId: string; tokens: Tokens; jar: CookieJar }> {
  const clientId = options.clientId ?? (await registerClient(gw));
  const { code, verifier, result } = await codeFor(gw, clientId, options);
  const response = await redeem(gw, clientId, code, verifier);
  if (response.status !== 200)
    throw new Error(`redeem answered ${response.status}: ${await response.text()}`);
  return { clientId, tokens: (await response.json()) as Tokens, jar: result.jar };
}
