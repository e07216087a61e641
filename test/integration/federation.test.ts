import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { federationConfigSchema } from '../../src/config/federation.js';
import { createSealer } from '../../src/crypto/seal.js';
import { GatehouseError } from '../../src/errors/gatehouse-error.js';
import { createFederation, type Federation } from '../../src/identity/oidc.js';
import { createManualClock, type ManualClock } from '../../src/ops/clock.js';
import { createLogger } from '../../src/ops/logger.js';
import { createMemoryStores } from '../../src/stores/memory/index.js';
import type { Stores } from '../../src/stores/ports.js';
import {
  TEST_IDP_CLIENT_ID as CLIENT_ID,
  TEST_IDP_CLIENT_SECRET as CLIENT_SECRET,
  loginAtIdp,
  startTestIdp,
  type TestIdp,
} from '../helpers/oidc-provider.js';

/*
 * Federated login against a real OpenID provider (panva/oidc-provider) on loopback. The test plays the
 * browser at the IdP (`loginAtIdp`), then hands the final callback URL to `complete()`.
 */

const CALLBACK = 'http://127.0.0.1:8787/oauth/callback';
/** Lifetime of the IdP's access tokens, in seconds: short, so the refresh path runs. */
const ACCESS_TOKEN_TTL = 120;

function startIdp(options: { conformIdTokenClaims: boolean }): Promise<TestIdp> {
  return startTestIdp({ redirectUri: CALLBACK, accessTokenTtlSeconds: ACCESS_TOKEN_TTL, ...options });
}

/** Every request the federation sends to the IdP, and every successful token response it got. */
interface Traffic {
  readonly requests: { url: string; grantType: string | undefined }[];
  readonly tokenResponses: Record<string, unknown>[];
}

interface FetchBehaviour {
  /** Fail this many requests with a network error before letting requests through. */
  failFirstRequests?: number;
  /** Rewrites successful token responses on their way to Gatehouse (a compromised network path). */
  rewriteTokenResponse?: (body: Record<string, unknown>) => Record<string, unknown>;
}

function recordingFetch(traffic: Traffic, behaviour: FetchBehaviour = {}): typeof fetch {
  let failures = behaviour.failFirstRequests ?? 0;
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const form = init?.body instanceof URLSearchParams ? init.body : undefined;
    traffic.requests.push({ url, grantType: form?.get('grant_type') ?? undefined });
    if (failures > 0) {
      failures -= 1;
      throw new TypeError('fetch failed');
    }
    const response = await fetch(input, init);
    if (new URL(url).pathname !== '/token' || !response.ok) return response;
    const body = (await response.json()) as Record<string, unknown>;
    traffic.tokenResponses.push(body);
    const rewritten = behaviour.rewriteTokenResponse?.(body) ?? body;
    return new Response(JSON.stringify(rewritten), { status: response.status, headers: response.headers });
  };
}

interface Harness {
  readonly federation: Federation;
  readonly stores: Stores;
  readonly clock: ManualClock;
  readonly traffic: Traffic;
  /** Everything the federation logged, at debug level and above. */
  readonly logs: string[];
}

const sealer = createSealer([new Uint8Array(32).fill(7)]);

function harness(
  idp: TestIdp,
  shared?: { stores: Stores; clock: ManualClock },
  behaviour: FetchBehaviour = {},
): Harness {
  const stores = shared?.stores ?? createMemoryStores();
  const clock = shared?.clock ?? createManualClock(Date.now());
  const traffic: Traffic = { requests: [], tokenResponses: [] };
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const config = federationConfigSchema.parse({
    issuer: idp.issuer,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    scopes: ['openid', 'email', 'profile', 'roles'],
    claims: { roles: 'realm_access.roles' },
    allowInsecureHttp: true,
    timeoutMs: 5_000,
  });
  const federation = createFederation({
    config,
    callbackUrl: CALLBACK,
    ephemeral: stores.ephemeral,
    upstreamTokens: stores.upstreamTokens,
    sealer,
    clock,
    logger: createLogger({ level: 'debug', destination }),
    fetch: recordingFetch(traffic, behaviour),
  });
  return { federation, stores, clock, traffic, logs };
}

async function signIn(h: Harness, interactionId = 'interaction-1') {
  const callback = await loginAtIdp(await h.federation.begin(interactionId));
  return h.federation.complete(callback);
}

async function rejection(promise: Promise<unknown>): Promise<GatehouseError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(GatehouseError);
  return error as GatehouseError;
}

/** Asserts that no token the IdP issued appears in what the federation logged. */
function expectNoTokensLogged(h: Harness): void {
  const logged = h.logs.join('');
  for (const response of h.traffic.tokenResponses) {
    for (const key of ['access_token', 'refresh_token', 'id_token']) {
      const token = response[key];
      if (typeof token === 'string') expect(logged.includes(token)).toBe(false);
    }
  }
}

function refreshCount(traffic: Traffic): number {
  return traffic.requests.filter((request) => request.grantType === 'refresh_token').length;
}

const ALICE = 'oidc#alice';

describe('federated login against a real OpenID provider', () => {
  let idp: TestIdp;
  let profileOnlyAtUserinfo: TestIdp;

  beforeAll(async () => {
    idp = await startIdp({ conformIdTokenClaims: false });
    profileOnlyAtUserinfo = await startIdp({ conformIdTokenClaims: true });
  });

  afterAll(async () => {
    await idp?.close();
    await profileOnlyAtUserinfo?.close();
  });

  // req: RFC9700-4.7-CLIENT-CSRF
  it('signs the user in with PKCE, state and nonce, and stores the upstream tokens sealed', async () => {
    const h = harness(idp);
    const authorizationUrl = await h.federation.begin('interaction-1');
    expect(authorizationUrl.origin).toBe(idp.issuer);
    const query = authorizationUrl.searchParams;
    expect(query.get('response_type')).toBe('code');
    expect(query.get('redirect_uri')).toBe(CALLBACK);
    expect(query.get('code_challenge_method')).toBe('S256');
    expect(query.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(query.get('state')).toMatch(/^[\w-]{43}$/);
    expect(query.get('nonce')).toMatch(/^[\w-]{43}$/);

    const callback = await loginAtIdp(authorizationUrl);
    expect(`${callback.origin}${callback.pathname}`).toBe(CALLBACK);
    expect(callback.searchParams.get('iss')).toBe(idp.issuer); // RFC 9207, checked by complete()
    const result = await h.federation.complete(callback);

    expect(result).toEqual({
      interactionId: 'interaction-1',
      principal: {
        subject: 'alice',
        idp: 'oidc',
        email: 'alice@example.com',
        name: 'Alice Liddell',
        claims: { roles: ['reader', 'writer'] },
      },
    });
    // Everything came from the ID token: no userinfo round trip.
    expect(h.traffic.requests.some((request) => request.url.endsWith('/me'))).toBe(false);

    const [tokens] = h.traffic.tokenResponses;
    const accessToken = String(tokens?.access_token);
    const refreshToken = String(tokens?.refresh_token);
    const idToken = String(tokens?.id_token);
    expect(refreshToken.length).toBeGreaterThan(20);
    const stored = await h.stores.upstreamTokens.get(ALICE, 'oidc');
    expect(stored).toMatchObject({ principalKey: ALICE, provider: 'oidc', version: 1 });
    expect(stored?.accessExpiresAt).toBe(h.clock.now() + ACCESS_TOKEN_TTL * 1000);
    expect(stored?.ciphertext.startsWith(`v1.${sealer.keyId}.`)).toBe(true);
    for (const secret of [accessToken, refreshToken, idToken]) {
      expect(stored?.ciphertext.includes(secret)).toBe(false);
      expect(JSON.stringify(stored).includes(secret)).toBe(false);
    }
    expect(await h.federation.accessToken(ALICE)).toBe(accessToken);
    expect(await h.federation.accessToken('other#alice')).toBeUndefined();
    expect(h.logs.join('')).toContain('federated login completed');
    expectNoTokensLogged(h);
  });

  // req: RFC9700-4.7-CLIENT-CSRF
  it('refuses a replayed callback (the state is single-use)', async () => {
    const h = harness(idp);
    const callback = await loginAtIdp(await h.federation.begin('interaction-1'));
    await h.federation.complete(callback);
    const error = await rejection(h.federation.complete(callback));
    expect(error.code).toBe('ERR_FEDERATION_STATE_INVALID');
    expect(error.status).toBe(400);
  });

  // req: RFC9700-4.7-CLIENT-CSRF
  it('refuses a tampered state, which leaves the real login intact', async () => {
    const h = harness(idp);
    const callback = await loginAtIdp(await h.federation.begin('interaction-1'));
    const tampered = new URL(callback);
    const state = String(callback.searchParams.get('state'));
    tampered.searchParams.set('state', `${state.slice(0, -1)}${state.endsWith('A') ? 'B' : 'A'}`);
    expect((await rejection(h.federation.complete(tampered))).code).toBe('ERR_FEDERATION_STATE_INVALID');
    const missing = new URL(callback);
    missing.searchParams.delete('state');
    expect((await rejection(h.federation.complete(missing))).code).toBe('ERR_FEDERATION_STATE_INVALID');

    expect((await h.federation.complete(callback)).principal.subject).toBe('alice');
  });

  it('refuses a state older than ten minutes', async () => {
    const h = harness(idp);
    const callback = await loginAtIdp(await h.federation.begin('interaction-1'));
    h.clock.advance(10 * 60_000 + 1);
    expect((await rejection(h.federation.complete(callback))).code).toBe('ERR_FEDERATION_STATE_INVALID');
  });

  it("surfaces the IdP's access_denied as a typed error naming the interaction", async () => {
    const h = harness(idp);
    const callback = await loginAtIdp(await h.federation.begin('interaction-deny'), { deny: true });
    expect(callback.searchParams.get('error')).toBe('access_denied');
    const error = await rejection(h.federation.complete(callback));
    expect(error.code).toBe('ERR_IDP_LOGIN_FAILED');
    expect(error.details).toMatchObject({
      idp: 'oidc',
      idpError: 'access_denied',
      interactionId: 'interaction-deny',
    });
    expect(h.traffic.tokenResponses).toHaveLength(0);
    expect((await rejection(h.federation.complete(callback))).code).toBe('ERR_FEDERATION_STATE_INVALID');
  });

  // req: RFC9207-2.4-CLIENT-VALIDATION
  it('refuses a callback naming another issuer (RFC 9207 mix-up defence)', async () => {
    const h = harness(idp);
    const callback = await loginAtIdp(await h.federation.begin('interaction-1'));
    callback.searchParams.set('iss', 'https://attacker.example');
    const error = await rejection(h.federation.complete(callback));
    expect(error.code).toBe('ERR_IDP_RESPONSE_INVALID');
    expect(error.details).toMatchObject({ interactionId: 'interaction-1' });
    expect(h.traffic.tokenResponses).toHaveLength(0);
  });

  // req: RFC9700-4.7-CLIENT-CSRF
  it("refuses a code injected into another login's callback (PKCE binds the code to its login)", async () => {
    const h = harness(idp);
    const victim = await loginAtIdp(await h.federation.begin('interaction-victim'));
    const attacker = await loginAtIdp(await h.federation.begin('interaction-attacker'));
    const injected = new URL(victim);
    injected.searchParams.set('code', String(attacker.searchParams.get('code')));
    const error = await rejection(h.federation.complete(injected));
    expect(error.code).toBe('ERR_IDP_RESPONSE_INVALID');
    expect(error.details).toMatchObject({ idpError: 'invalid_grant', interactionId: 'interaction-victim' });
    expect(await h.stores.upstreamTokens.get(ALICE, 'oidc')).toBeUndefined();
  });

  it('refuses an ID token whose signature does not verify, even from the token endpoint', async () => {
    const h = harness(idp, undefined, {
      rewriteTokenResponse: (body) => {
        const [header, payload, signature] = String(body.id_token).split('.');
        const claims = JSON.parse(Buffer.from(String(payload), 'base64url').toString('utf8')) as object;
        const forged = Buffer.from(JSON.stringify({ ...claims, name: 'Mallory' })).toString('base64url');
        return { ...body, id_token: `${header}.${forged}.${signature}` };
      },
    });
    const callback = await loginAtIdp(await h.federation.begin('interaction-1'));
    const error = await rejection(h.federation.complete(callback));
    expect(error.code).toBe('ERR_IDP_RESPONSE_INVALID');
    expect(error.details).toMatchObject({ interactionId: 'interaction-1' });
    expect(await h.stores.upstreamTokens.get(ALICE, 'oidc')).toBeUndefined();
    expectNoTokensLogged(h);
  });

  it('refreshes an expiring access token through the IdP and stores the rotated refresh token', async () => {
    const h = harness(idp);
    await signIn(h);
    const first = String(h.traffic.tokenResponses[0]?.access_token);

    h.clock.advance((ACCESS_TOKEN_TTL - 61) * 1000);
    expect(await h.federation.accessToken(ALICE)).toBe(first);
    expect(refreshCount(h.traffic)).toBe(0);

    h.clock.advance(2_000); // now within 60 s of expiry
    const second = await h.federation.accessToken(ALICE);
    expect(second).toBeDefined();
    expect(second).not.toBe(first);
    expect(second).toBe(h.traffic.tokenResponses[1]?.access_token);
    expect(refreshCount(h.traffic)).toBe(1);
    const stored = await h.stores.upstreamTokens.get(ALICE, 'oidc');
    expect(stored?.version).toBe(2);
    expect(stored?.accessExpiresAt).toBe(h.clock.now() + ACCESS_TOKEN_TTL * 1000);
    expect(await h.federation.accessToken(ALICE)).toBe(second);
    expect(refreshCount(h.traffic)).toBe(1);

    // The IdP rotated the refresh token; refreshing again only works if the new one was stored.
    expect(h.traffic.tokenResponses[1]?.refresh_token).not.toBe(h.traffic.tokenResponses[0]?.refresh_token);
    h.clock.advance(ACCESS_TOKEN_TTL * 1000);
    const third = await h.federation.accessToken(ALICE);
    expect(third).toBe(h.traffic.tokenResponses[2]?.access_token);
    expect(third).not.toBe(second);
    expectNoTokensLogged(h);
  });

  it('coalesces concurrent refreshes of one user into one IdP request', async () => {
    const h = harness(idp);
    await signIn(h);
    h.clock.advance(ACCESS_TOKEN_TTL * 1000);
    const results = await Promise.all([
      h.federation.accessToken(ALICE),
      h.federation.accessToken(ALICE),
      h.federation.accessToken(ALICE),
    ]);
    expect(refreshCount(h.traffic)).toBe(1);
    expect(new Set(results)).toEqual(new Set([h.traffic.tokenResponses[1]?.access_token]));
    expect((await h.stores.upstreamTokens.get(ALICE, 'oidc'))?.version).toBe(2);
  });

  it("lets the instance that loses the compare-and-swap use the winner's token", async () => {
    idp.rotate = false;
    try {
      const a = harness(idp);
      const b = harness(idp, { stores: a.stores, clock: a.clock });
      await signIn(a);
      a.clock.advance(ACCESS_TOKEN_TTL * 1000);
      const [fromA, fromB] = await Promise.all([
        a.federation.accessToken(ALICE),
        b.federation.accessToken(ALICE),
      ]);
      expect(refreshCount(a.traffic) + refreshCount(b.traffic)).toBe(2);
      expect(fromA).toBeDefined();
      expect(fromB).toBe(fromA);
      const stored = await a.stores.upstreamTokens.get(ALICE, 'oidc');
      expect(stored?.version).toBe(2);
      expect(await a.federation.accessToken(ALICE)).toBe(fromA);
    } finally {
      idp.rotate = true;
    }
  });

  it('deletes the stored tokens when the IdP refuses the refresh token (invalid_grant)', async () => {
    const h = harness(idp);
    await signIn(h);
    const refreshToken = String(h.traffic.tokenResponses[0]?.refresh_token);
    const revoked = await fetch(`${idp.issuer}/token/revocation`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token: refreshToken, token_type_hint: 'refresh_token' }).toString(),
    });
    expect(revoked.status).toBe(200);

    h.clock.advance(ACCESS_TOKEN_TTL * 1000);
    expect(await h.federation.accessToken(ALICE)).toBeUndefined();
    expect(refreshCount(h.traffic)).toBe(1);
    expect(await h.stores.upstreamTokens.get(ALICE, 'oidc')).toBeUndefined();
    expect(await h.federation.accessToken(ALICE)).toBeUndefined();
    expectNoTokensLogged(h);
  });

  it('reads profile claims from userinfo when the ID token lacks them', async () => {
    const h = harness(profileOnlyAtUserinfo);
    const { principal } = await signIn(h);
    expect(principal).toEqual({
      subject: 'alice',
      idp: 'oidc',
      email: 'alice@example.com',
      name: 'Alice Liddell',
      claims: { roles: ['reader', 'writer'] },
    });
    expect(h.traffic.requests.filter((request) => request.url.endsWith('/me'))).toHaveLength(1);
  });

  it('keeps the state when the IdP cannot be reached at the callback, so the callback can be retried', async () => {
    const starter = harness(idp);
    const callback = await loginAtIdp(await starter.federation.begin('interaction-1'));
    const other = harness(idp, { stores: starter.stores, clock: starter.clock }, { failFirstRequests: 1 });
    const error = await rejection(other.federation.complete(callback));
    expect(error.code).toBe('ERR_IDP_UNAVAILABLE');
    starter.clock.advance(30_000);
    expect((await other.federation.complete(callback)).interactionId).toBe('interaction-1');
  });

  it('fails fast while discovery is cooling down, then tries again', async () => {
    const h = harness(idp, undefined, { failFirstRequests: 1 });
    const first = await rejection(h.federation.begin('interaction-1'));
    expect(first.code).toBe('ERR_IDP_UNAVAILABLE');
    expect(first.status).toBe(503);
    expect(h.traffic.requests).toHaveLength(1);

    h.clock.advance(10_000);
    const cooling = await rejection(h.federation.begin('interaction-1'));
    expect(cooling.code).toBe('ERR_IDP_UNAVAILABLE');
    expect(cooling.retryAfterSeconds).toBe(20);
    expect(h.traffic.requests).toHaveLength(1);

    h.clock.advance(20_000);
    const url = await h.federation.begin('interaction-1');
    expect(url.origin).toBe(idp.issuer);
    expect((await signIn(h, 'interaction-2')).principal.subject).toBe('alice');
  });
});
