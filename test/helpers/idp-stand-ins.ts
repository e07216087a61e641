import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { TEST_IDP_CLIENT_ID, TEST_IDP_CLIENT_SECRET } from './oidc-provider.js';

/*
 * Stand-ins for hosted identity providers, on loopback, for the tests of the documented IdP
 * configurations (docs/identity-providers.md):
 *
 * - `startOidcStandIn`: a real OpenID provider (panva/oidc-provider) whose issuer has the provider's
 *   shape (Auth0's trailing "/", Keycloak's `/realms/<realm>`, Supabase's `/auth/v1`, Entra's
 *   `/<tenant>/v2.0`) and whose ID tokens carry the provider's claims. It can refuse, as Entra's v2
 *   endpoints do, an authorization request that carries the RFC 8707 `resource` parameter.
 * - `startTokenIssuer`: a key pair and its JWKS on loopback, signing access tokens of any claim shape
 *   (resource-server mode), with the issuer written in the token, not derived from the loopback URL.
 */

type NodeHandler = (req: IncomingMessage, res: ServerResponse) => void;
interface OidcProvider {
  callback(): NodeHandler;
}
type OidcProviderClass = new (issuer: string, configuration: object) => OidcProvider;

async function loadOidcProvider(): Promise<OidcProviderClass> {
  // oidc-provider ships no type declarations: import it by name at run time and type the little we use.
  const specifier = 'oidc-provider';
  const module = (await import(specifier)) as { default: OidcProviderClass };
  return module.default;
}

async function listen(handler: NodeHandler): Promise<{ server: Server; origin: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function closer(server: Server): () => Promise<void> {
  return () =>
    new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close((error) => (error ? reject(error) : resolve()));
    });
}

export interface OidcStandInOptions {
  /**
   * The issuer's path after the loopback origin, exactly as the provider writes it: `/` (Auth0: a
   * trailing slash), `` (Google, AuthKit), `/realms/team`, `/auth/v1`, `/<tenant-id>/v2.0`.
   */
  readonly issuerPath: string;
  /** The users, by `sub`: every claim the provider releases for them. */
  readonly accounts: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Which claims each scope releases (into the ID token and userinfo), besides `sub` for `openid`. */
  readonly scopeClaims: Readonly<Record<string, readonly string[]>>;
  /** Gatehouse's callback registered at the provider. */
  readonly redirectUri: string;
  /** Refuse any request carrying `resource`, as Entra ID's v2 endpoints do (AADSTS901002). */
  readonly refuseResourceParameter?: boolean;
}

export interface OidcStandIn {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Every authorization request the browser brought, as received. */
  readonly authorizationRequests: URL[];
  close(): Promise<void>;
}

/** Starts an OpenID provider shaped like a hosted IdP; one confidential client (`TEST_IDP_CLIENT_ID`). */
export async function startOidcStandIn(options: OidcStandInOptions): Promise<OidcStandIn> {
  const Provider = await loadOidcProvider();
  const mountPath = options.issuerPath.replace(/\/$/, '');
  const authorizationRequests: URL[] = [];
  let provider: NodeHandler = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const { server, origin } = await listen((req, res) => {
    const url = new URL(req.url ?? '/', origin);
    if (!url.pathname.startsWith(`${mountPath}/`)) {
      res.statusCode = 404;
      res.end();
      return;
    }
    if (url.pathname === `${mountPath}/auth`) {
      authorizationRequests.push(url);
      if (options.refuseResourceParameter && url.searchParams.has('resource')) {
        res.statusCode = 400;
        res.setHeader('content-type', 'text/plain');
        res.end("AADSTS901002: The 'resource' request parameter isn't supported.");
        return;
      }
    }
    // Mounted the way Express mounts it: oidc-provider reads its mount path from `originalUrl`.
    Object.assign(req, { originalUrl: req.url, url: (req.url ?? '/').slice(mountPath.length) });
    provider(req, res);
  });
  const issuer = `${origin}${options.issuerPath}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: 'stand-in', alg: 'RS256', use: 'sig' };
  const claims: Record<string, string[]> = { openid: ['sub'] };
  for (const [scope, names] of Object.entries(options.scopeClaims)) {
    claims[scope] = [...(claims[scope] ?? []), ...names];
  }
  const instance = new Provider(issuer, {
    clients: [
      {
        client_id: TEST_IDP_CLIENT_ID,
        client_secret: TEST_IDP_CLIENT_SECRET,
        redirect_uris: [options.redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [signingKey] },
    cookies: { keys: ['cookie-signing-key-for-the-stand-in'] },
    claims,
    conformIdTokenClaims: false,
    findAccount: async (_ctx: unknown, sub: string) => {
      const account = options.accounts[sub];
      if (account === undefined) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...account }) };
    },
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => true },
    issueRefreshToken: async () => true,
  });
  provider = instance.callback();
  return {
    issuer,
    clientId: TEST_IDP_CLIENT_ID,
    clientSecret: TEST_IDP_CLIENT_SECRET,
    authorizationRequests,
    close: closer(server),
  };
}

export interface TokenIssuer {
  /** Where the public key is served (`{ keys: [...] }`). */
  readonly jwksUrl: string;
  /** Signs `claims` (RS256, kid `stand-in`); `iat` and `exp` (5 min) unless given. */
  sign(claims: JWTPayload, options?: { readonly typ?: string }): Promise<string>;
  close(): Promise<void>;
}

/** A key pair and its JWKS on loopback, for access tokens of a provider's shape (resource-server mode). */
export async function startTokenIssuer(): Promise<TokenIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'stand-in', alg: 'RS256' }] });
  const { server, origin } = await listen((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(jwks);
  });
  return {
    jwksUrl: `${origin}/jwks.json`,
    sign: (claims, options = {}) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iat: now, exp: now + 300, ...claims })
        .setProtectedHeader({ alg: 'RS256', kid: 'stand-in', typ: options.typ ?? 'JWT' })
        .sign(privateKey);
    },
    close: closer(server),
  };
}
