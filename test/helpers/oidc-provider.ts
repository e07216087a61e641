import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import { CookieJar } from './oauth.js';

/*
 * A real OpenID provider (panva/oidc-provider) on loopback, for federated sign-in tests, and a user agent
 * that plays the user at it: follows its redirects with a cookie jar and submits its development login and
 * consent forms.
 */

export const TEST_IDP_CLIENT_ID = 'gatehouse';
export const TEST_IDP_CLIENT_SECRET = 'a-client-secret-that-is-long-enough-for-tests';

/** The IdP's users, by `sub`; any password is accepted. */
export const TEST_IDP_ACCOUNTS: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  alice: {
    email: 'alice@example.com',
    email_verified: true,
    name: 'Alice Liddell',
    realm_access: { roles: ['reader', 'writer'] },
  },
};

export interface TestIdpOptions {
  /**
   * The one client's redirect URI, or a function of the issuer returning it: for a relying party that must
   * know the issuer before its own URL exists (a gateway bound to port 0). Runs before the provider starts.
   */
  readonly redirectUri: string | ((issuer: string) => string | Promise<string>);
  /** Lifetime of the IdP's access tokens, in seconds. Default 120: short, so refresh paths can run. */
  readonly accessTokenTtlSeconds?: number;
  /** oidc-provider's `conformIdTokenClaims`: `true` keeps profile claims out of the ID token (userinfo only). */
  readonly conformIdTokenClaims?: boolean;
}

export interface TestIdp {
  readonly issuer: string;
  readonly redirectUri: string;
  /** Whether the IdP rotates refresh tokens on use (switchable per test). Default `true`. */
  rotate: boolean;
  /** Every successful token-endpoint response the IdP sent, in order (the relying party's side unseen). */
  readonly tokenResponses: Record<string, unknown>[];
  close(): Promise<void>;
}

type NodeHandler = (req: IncomingMessage, res: ServerResponse) => void;
interface OidcProvider {
  callback(): NodeHandler;
  on(event: 'grant.success', listener: (ctx: { body?: unknown }) => void): void;
}
type OidcProviderClass = new (issuer: string, configuration: object) => OidcProvider;

async function loadOidcProvider(): Promise<OidcProviderClass> {
  // oidc-provider ships no type declarations: import it by name at run time and type the little we use.
  const specifier = 'oidc-provider';
  const module = (await import(specifier)) as { default: OidcProviderClass };
  return module.default;
}

/** Starts an OpenID provider on 127.0.0.1 (a free port) with one confidential client and dev interactions. */
export async function startTestIdp(options: TestIdpOptions): Promise<TestIdp> {
  const Provider = await loadOidcProvider();
  let handler: NodeHandler = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const server: Server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = () =>
    new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close((error) => (error ? reject(error) : resolve()));
    });
  let redirectUri: string;
  try {
    redirectUri =
      typeof options.redirectUri === 'string' ? options.redirectUri : await options.redirectUri(issuer);
  } catch (error) {
    await close();
    throw error;
  }
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
  const idp: TestIdp = { issuer, redirectUri, rotate: true, tokenResponses: [], close };
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: TEST_IDP_CLIENT_ID,
        client_secret: TEST_IDP_CLIENT_SECRET,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [signingKey] },
    cookies: { keys: ['cookie-signing-key-for-the-test-idp'] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      roles: ['realm_access'],
    },
    conformIdTokenClaims: options.conformIdTokenClaims ?? false,
    findAccount: async (_ctx: unknown, sub: string) => {
      const account = TEST_IDP_ACCOUNTS[sub];
      if (account === undefined) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...account }) };
    },
    features: { devInteractions: { enabled: true }, revocation: { enabled: true } },
    pkce: { required: () => true },
    // Like most hosted IdPs (Keycloak, Supabase), issue a refresh token without `offline_access`.
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) =>
      client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: () => idp.rotate,
    ttl: {
      AccessToken: options.accessTokenTtlSeconds ?? 120,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 24 * 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 24 * 3600,
    },
  });
  // Emitted after the grant handler set the response body: the tokens exactly as sent.
  provider.on('grant.success', (ctx) => {
    if (typeof ctx.body === 'object' && ctx.body !== null)
      idp.tokenResponses.push({ ...(ctx.body as Record<string, unknown>) });
  });
  handler = provider.callback();
  return idp;
}

export interface IdpLoginOptions {
  /** The IdP account to sign in as. Default `alice`. */
  readonly account?: string;
  /** Cancel at the IdP instead of signing in (the IdP then answers `access_denied`). */
  readonly deny?: boolean;
  /** The browser's cookies; cookies ignore ports, so a real browser shares one jar with Gatehouse. */
  readonly jar?: CookieJar;
}

const MAX_IDP_STEPS = 16;

/**
 * Plays the user at the IdP: follows redirects from `authorizationUrl`, signs in as `account` and grants
 * consent (or cancels with `deny`), and returns the first URL the IdP sends the browser to outside its own
 * origin: the relying party's callback.
 */
export async function loginAtIdp(authorizationUrl: URL, options: IdpLoginOptions = {}): Promise<URL> {
  const jar = options.jar ?? new CookieJar();
  const idpOrigin = authorizationUrl.origin;
  let next: { url: string; body?: string } = { url: authorizationUrl.href };
  for (let step = 0; step < MAX_IDP_STEPS; step += 1) {
    if (new URL(next.url).origin !== idpOrigin) return new URL(next.url);
    const response = await fetch(next.url, {
      redirect: 'manual',
      ...(next.body === undefined
        ? { headers: { cookie: jar.header() } }
        : {
            method: 'POST',
            headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
            body: next.body,
          }),
    });
    jar.store(response);
    const location = response.headers.get('location');
    if (location !== null) {
      await response.body?.cancel();
      next = { url: new URL(location, next.url).href };
      continue;
    }
    const html = await response.text();
    if (response.status !== 200)
      throw new Error(`the IdP answered ${response.status}: ${html.slice(0, 300)}`);
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    if (action === undefined) throw new Error(`no form on the IdP page: ${html.slice(0, 300)}`);
    const actionUrl = new URL(action, next.url).href;
    if (options.deny) {
      next = { url: `${actionUrl}/abort` };
      continue;
    }
    const form: Record<string, string> = html.includes('name="login"')
      ? { prompt: 'login', login: options.account ?? 'alice', password: 'any' }
      : { prompt: 'consent' };
    next = { url: actionUrl, body: new URLSearchParams(form).toString() };
  }
  throw new Error('the IdP never redirected out of its origin');
}
