import { Client, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/ops/clock.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { text } from '../helpers/mcp.js';
import { CookieJar, type FederatedSignIn, UnexpectedPageError } from '../helpers/oauth.js';
import { TestOAuthProvider } from '../helpers/oauth-provider.js';
import {
  loginAtIdp,
  startTestIdp,
  TEST_IDP_CLIENT_ID,
  TEST_IDP_CLIENT_SECRET,
  type TestIdp,
} from '../helpers/oidc-provider.js';

/** Lifetime of the IdP's access tokens, in seconds: short, so moving the gateway's clock past it forces a refresh. */
const IDP_ACCESS_TOKEN_TTL = 120;
/** The `generic` preset names its provider `oidc`; federated principals are `oidc#<sub>`. */
const ALICE = 'oidc#alice';

/** A `FederatedSignIn` that plays the user at the IdP and remembers the Gatehouse callback it came back with. */
function atIdp(options: { deny?: boolean } = {}) {
  const seen: { idpUrls: URL[]; callbacks: URL[] } = { idpUrls: [], callbacks: [] };
  const federated: FederatedSignIn = async (idpUrl, jar) => {
    seen.idpUrls.push(idpUrl);
    const callback = await loginAtIdp(idpUrl, { jar, ...options });
    seen.callbacks.push(callback);
    return callback;
  };
  return { federated, seen };
}

/** The error code Gatehouse's message page shows (`data-testid="message-detail"`). */
function messageDetail(html: string): string | undefined {
  return /data-testid="message-detail">([^<]*)</.exec(html)?.[1];
}

/**
 * Federated sign-in through the whole gateway: a real MCP SDK client (v2) meets a 401, registers, and
 * sends the user to Gatehouse; the user presses "Continue with …", signs in and consents at a real
 * OpenID provider (oidc-provider's dev interactions), comes back through `/oauth/callback`, approves
 * Gatehouse's consent page, and the client redeems the code and calls the demo's `whoami` as the IdP's
 * user. Local accounts are off: federation is the only way in.
 */
describe('federated sign-in through the whole gateway (real OpenID provider, real SDK client)', () => {
  const clock = createManualClock(Date.now());
  let idp: TestIdp;
  let gw: TestGateway | undefined;
  let callbackUrl: string;

  beforeAll(async () => {
    // The IdP needs the gateway's callback, the gateway the IdP's issuer: bind the IdP, start the gateway
    // with its issuer (discovery is lazy), then register the gateway's callback at the IdP.
    idp = await startTestIdp({
      accessTokenTtlSeconds: IDP_ACCESS_TOKEN_TTL,
      redirectUri: async (issuer) => {
        gw = await startTestGateway(
          {
            authorizationServer: {
              localAccounts: false,
              federation: {
                preset: 'generic',
                issuer,
                clientId: TEST_IDP_CLIENT_ID,
                clientSecret: TEST_IDP_CLIENT_SECRET,
                allowInsecureHttp: true,
              },
            },
          },
          { clock },
        );
        return `${gw.gateway.urls.publicUrl}/oauth/callback`;
      },
    });
    callbackUrl = idp.redirectUri;
  });
  afterAll(async () => {
    await gw?.close();
    await idp?.close();
  });

  const gateway = () => gw as TestGateway;
  const federation = () => {
    const found = gateway().gateway.authorizationServer?.federation;
    if (found === undefined) throw new Error('federation is not configured');
    return found;
  };

  it('signs the user in at the IdP; whoami is the IdP user; upstream tokens are sealed and refreshed through the IdP', async () => {
    const { federated, seen } = atIdp();
    const provider = new TestOAuthProvider({ federated });
    const tokensBefore = idp.tokenResponses.length;
    const first = new Client({ name: 'federation-test', version: '1.0.0' });
    await expect(
      first.connect(new StreamableHTTPClientTransport(gateway().mcpUrl, { authProvider: provider as never })),
    ).rejects.toBeInstanceOf(UnauthorizedError);
    const {
      callback,
      pages,
      jar: browser,
    } = await (provider.pending as NonNullable<typeof provider.pending>);

    // Gatehouse's login page (federated button only), the IdP, then Gatehouse's consent page.
    expect(pages).toEqual(['login', 'consent']);
    const [idpUrl] = seen.idpUrls;
    expect(idpUrl?.origin).toBe(idp.issuer);
    expect(idpUrl?.searchParams.get('redirect_uri')).toBe(callbackUrl);
    expect(idpUrl?.searchParams.get('code_challenge_method')).toBe('S256');
    const [gatehouseCallback] = seen.callbacks;
    expect(`${gatehouseCallback?.origin}${gatehouseCallback?.pathname}`).toBe(callbackUrl);
    expect(gatehouseCallback?.searchParams.get('code')).toBeTruthy();
    // The client's callback: its own redirect URI with a code and Gatehouse's RFC 9207 `iss`.
    expect(`${callback.origin}${callback.pathname}`).toBe(provider.redirectUrl);
    expect(callback.searchParams.get('code')).toBeTruthy();
    expect(callback.searchParams.get('iss')).toBe(gateway().gateway.authorizationServer?.urls.issuer);

    const transport = new StreamableHTTPClientTransport(gateway().mcpUrl, {
      authProvider: provider as never,
    });
    await transport.finishAuth(callback.searchParams);
    const accessToken = provider.savedTokens?.access_token as string;
    expect(decodeJwt(accessToken)).toMatchObject({ sub: 'alice', idp: 'oidc', email: 'alice@example.com' });

    const client = new Client({ name: 'federation-test', version: '1.0.0' });
    await client.connect(transport);
    const whoami = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} }))) as Record<
      string,
      unknown
    >;
    expect(whoami).toMatchObject({ userId: 'alice', email: 'alice@example.com' });
    await client.close();

    // The IdP's tokens for alice, stored sealed under her principal key.
    expect(idp.tokenResponses).toHaveLength(tokensBefore + 1);
    const issued = idp.tokenResponses[tokensBefore] as Record<string, unknown>;
    const stored = await gateway().gateway.stores.upstreamTokens.get(ALICE, 'oidc');
    expect(stored).toMatchObject({ principalKey: ALICE, provider: 'oidc', version: 1 });
    expect(stored?.ciphertext.startsWith(`v1.${gateway().gateway.authorizationServer?.sealer.keyId}.`)).toBe(
      true,
    );
    for (const name of ['access_token', 'refresh_token', 'id_token']) {
      const secret = issued[name];
      expect(typeof secret).toBe('string');
      expect(JSON.stringify(stored).includes(secret as string)).toBe(false);
    }
    const upstream = await federation().accessToken(ALICE);
    expect(upstream).toBe(issued.access_token);
    expect(idp.tokenResponses).toHaveLength(tokensBefore + 1);

    // Past the IdP's access-token lifetime (on the gateway's clock) the token is refreshed at the IdP.
    clock.advance(IDP_ACCESS_TOKEN_TTL * 1000);
    const refreshed = await federation().accessToken(ALICE);
    expect(idp.tokenResponses).toHaveLength(tokensBefore + 2);
    expect(refreshed).toBe(idp.tokenResponses[tokensBefore + 1]?.access_token);
    expect(refreshed).not.toBe(upstream);
    expect((await gateway().gateway.stores.upstreamTokens.get(ALICE, 'oidc'))?.version).toBe(2);
    expect(await federation().accessToken(ALICE)).toBe(refreshed);
    expect(idp.tokenResponses).toHaveLength(tokensBefore + 2);

    // The Gatehouse callback URL is single-use: replayed, in the same browser or another, it is refused.
    const replayTarget = gatehouseCallback as URL;
    for (const jar of [browser, new CookieJar()]) {
      const replay = await fetch(replayTarget, { redirect: 'manual', headers: { cookie: jar.header() } });
      expect(replay.status).toBe(400);
      expect(replay.headers.get('location')).toBeNull();
      expect(messageDetail(await replay.text())).toBe('ERR_FEDERATION_STATE_INVALID');
    }
    expect(idp.tokenResponses).toHaveLength(tokensBefore + 2);
  });

  it('refuses a Gatehouse callback opened in a browser other than the one that started the sign-in (login CSRF)', async () => {
    const victim = new CookieJar();
    let planted: Response | undefined;
    // The attacker signs in at the IdP as themself, then makes the victim's browser open the callback.
    const federated: FederatedSignIn = async (idpUrl, jar) => {
      // The victim's browser has been to Gatehouse too: it carries a browser cookie of its own.
      victim.store(await fetch(provider.redirects[0] as URL, { redirect: 'manual' }));
      expect([...victim.cookies.keys()].some((name) => name.includes('gh_browser'))).toBe(true);
      const callback = await loginAtIdp(idpUrl, { jar });
      planted = await fetch(callback, { redirect: 'manual', headers: { cookie: victim.header() } });
      victim.store(planted);
      return callback;
    };
    const provider = new TestOAuthProvider({ federated });
    const client = new Client({ name: 'federation-test', version: '1.0.0' });
    await expect(
      client.connect(
        new StreamableHTTPClientTransport(gateway().mcpUrl, { authProvider: provider as never }),
      ),
    ).rejects.toBeInstanceOf(UnauthorizedError);
    const failure = await (provider.pending as NonNullable<typeof provider.pending>).then(
      () => undefined,
      (error: unknown) => error,
    );

    expect(planted?.status).toBe(400);
    expect(planted?.headers.get('location')).toBeNull();
    expect([...victim.cookies.keys()].filter((name) => name.includes('gh_session'))).toEqual([]);
    // The state was spent by that attempt, so the real browser cannot finish with it either.
    expect(failure).toBeInstanceOf(UnexpectedPageError);
    expect((failure as UnexpectedPageError).status).toBe(400);
    expect(messageDetail((failure as UnexpectedPageError).html)).toBe('ERR_FEDERATION_STATE_INVALID');
    expect(provider.savedTokens).toBeUndefined();
  });

  it("shows Gatehouse's error page when the IdP answers access_denied; no code reaches the client", async () => {
    const { federated, seen } = atIdp({ deny: true });
    const provider = new TestOAuthProvider({ federated });
    const tokensBefore = idp.tokenResponses.length;
    const client = new Client({ name: 'federation-test', version: '1.0.0' });
    await expect(
      client.connect(
        new StreamableHTTPClientTransport(gateway().mcpUrl, { authProvider: provider as never }),
      ),
    ).rejects.toBeInstanceOf(UnauthorizedError);

    const failure = await (provider.pending as NonNullable<typeof provider.pending>).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(UnexpectedPageError);
    const page = failure as UnexpectedPageError;
    expect(new URL(page.url).pathname).toBe('/oauth/callback');
    expect(page.status).toBe(400);
    expect(messageDetail(page.html)).toBe('ERR_IDP_LOGIN_FAILED');

    const [idpAnswer] = seen.callbacks;
    expect(idpAnswer?.searchParams.get('error')).toBe('access_denied');
    expect(idpAnswer?.searchParams.get('code')).toBeNull();
    // The user agent stopped at the error page: nothing was sent to the client's redirect URI, so the
    // client holds no code and no tokens, and Gatehouse asked the IdP for none.
    expect(provider.savedTokens).toBeUndefined();
    expect(idp.tokenResponses).toHaveLength(tokensBefore);
  });
});
