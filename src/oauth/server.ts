import { Hono } from 'hono';
import { cors } from 'hono/cors';
import type { AuthorizationServerConfig } from '../config/schema.js';
import type { Sealer } from '../crypto/seal.js';
import { createAudienceTokenMinter, type SupabaseTokenMinter } from '../downstream/minted-token.js';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { OAuthError } from '../errors/oauth-error.js';
import { renderOAuthEndpointError } from '../errors/render.js';
import { createLocalAccounts, type LocalAccounts } from '../identity/local-accounts.js';
import { createFederation, type Federation } from '../identity/oidc.js';
import type { Principal } from '../identity/principal.js';
import { clientAddressOf, type GatehouseEnv, requestIdOf } from '../net/request-context.js';
import { createSafeFetch, type SafeFetch } from '../net/safe-fetch.js';
import { auditTo } from '../ops/audit.js';
import type { Clock } from '../ops/clock.js';
import type { EventBus } from '../ops/events.js';
import type { Logger } from '../ops/logger.js';
import type { PrincipalSnapshot, Stores } from '../stores/ports.js';
import type { RevocationList } from '../tokens/revocation.js';
import type { TokenSigner } from '../tokens/sign.js';
import { canonicalResource } from './authorize-request.js';
import { type BrowserSessions, createBrowserSessions } from './browser-session.js';
import { type ClientLookup, createCimdResolver } from './cimd.js';
import { createCimdFetchLimiter } from './cimd-fetch-limit.js';
import { isAllowedRedirectUri, preRegisteredToClientRecord } from './client-metadata.js';
import {
  authenticateClient,
  createClientRegistry,
  type ResolvedClient,
  readClientCredentials,
} from './clients.js';
import { approveCommand, type FederatedLogin, mountBrowserRoutes } from './endpoints/browser.js';
import type { FormParams } from './endpoints/form.js';
import { createIntrospectionEndpoint } from './endpoints/introspect.js';
import { createRegistrationEndpoint } from './endpoints/register.js';
import { createRevocationEndpoint } from './endpoints/revoke.js';
import { createTokenEndpoint } from './endpoints/token.js';
import type { GrantContext } from './grants/context.js';
import type { TokenExchangeContext } from './grants/token-exchange.js';
import {
  type AuthorizationServerUrls,
  authorizationServerMetadata,
  authorizationServerUrls,
  metadataPaths,
  OAUTH_PATHS,
} from './metadata.js';
import { renderPageError } from './pages/render-error.js';
import { createAccessTokenIssuer } from './tokens.js';

export interface AuthorizationServerOptions {
  readonly config: AuthorizationServerConfig;
  /** `development` allows metadata documents on private networks when configured; `production` refuses. */
  readonly mode: 'development' | 'production';
  readonly publicUrl: string;
  readonly issuer: string;
  readonly jwksUrl: string;
  /** The resource (MCP endpoint) tokens are issued for. */
  readonly resource: string;
  readonly scopesSupported: readonly string[];
  /** Granted when a client asks for no scope. */
  readonly defaultScopes: readonly string[];
  readonly stores: Stores;
  readonly signer: TokenSigner;
  /** Verifies an access token this server issued (signature, issuer, audience, expiry). */
  readonly verifyOwnToken: (token: string) => Promise<Principal>;
  /**
   * Verifies an identity token Gatehouse minted for its HTTP upstream. With it, the token-exchange grant
   * accepts such a token as a `jwt` subject token, so the upstream service can trade the identity it was
   * handed (never the client's token) for a token to another service.
   */
  readonly verifyIdentityToken?: ((token: string) => Promise<Principal>) | undefined;
  /** Mints Supabase user tokens: the token-exchange grant uses it for the `authenticated` audience. */
  readonly supabaseMinter?: SupabaseTokenMinter | undefined;
  /** Encrypts secrets at rest (upstream tokens); the same sealer the signing keys use. */
  readonly sealer: Sealer;
  /** Replaces the `fetch` used to reach the federated identity provider (tests). */
  readonly federationFetch?: typeof fetch;
  /**
   * Replaces the SSRF-safe fetch built from `config.clientIdMetadataDocuments` for Client ID Metadata
   * Documents, e.g. one trusting a private CA (`createSafeFetch({ ca })`). Its own address policy,
   * timeout and redirect limit then apply instead of the configured ones; `maxBytes` still caps the
   * document size. Default: built from the configuration.
   */
  readonly cimdFetch?: SafeFetch;
  /** Revoked tokens: shared with the guard, which refuses them on every transport. */
  readonly revocations: RevocationList;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Sign-ins, consents, codes and tokens are reported here. */
  readonly events: EventBus;
  /**
   * The admin resource (`<publicUrl>/admin`, RFC 8707): served beside `resource`, but codes and tokens for
   * it go only to local accounts that are enabled and hold the `admin` role (checked at authorization, code
   * redemption and every refresh). `consoleClient` is the admin console's own client: configured, public
   * (PKCE), trusted (no consent page). Absent: the authorization server knows no admin resource.
   */
  readonly admin?:
    | {
        readonly resource: string;
        readonly consoleClient?: { readonly clientId: string; readonly redirectUri: string } | undefined;
      }
    | undefined;
}

export interface AuthorizationServer {
  readonly urls: AuthorizationServerUrls;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly revocations: RevocationList;
  readonly accounts: LocalAccounts | undefined;
  readonly sealer: Sealer;
  /** Sign-in through the configured upstream identity provider, and its per-user tokens. */
  readonly federation: Federation | undefined;
  /**
   * The JSON endpoints (metadata, token, registration, revocation, introspection): a sub-app whose errors
   * are RFC 6749 §5.2 JSON.
   */
  readonly endpoints: Hono<GatehouseEnv>;
  /** The browser pages (authorize, sign-in, consent, federation callback): a sub-app whose errors are pages. */
  readonly pages: Hono<GatehouseEnv>;
  /** The browser sign-in the pages keep (the admin console signs in through it too). */
  readonly browserSessions: BrowserSessions;
  /** Starts the expiry sweep of codes, grants, revocations and browser records. */
  start(): void;
  close(): void;
}

const SWEEP_INTERVAL_MS = 60_000;
const SWEEP_BATCH = 500;

/**
 * Gatehouse's OAuth 2.1 authorization server for MCP clients: RFC 8414 metadata, Client ID Metadata
 * Documents, RFC 7591 registration, authorize with PKCE S256 and RFC 8707 resources, sign-in and
 * consent pages, the token endpoint with refresh rotation, RFC 7009 revocation and RFC 7662
 * introspection. Every record lives behind the store ports.
 */
export function createAuthorizationServer(options: AuthorizationServerOptions): AuthorizationServer {
  const { config, stores, clock, logger, revocations } = options;
  const audit = auditTo(options.events);
  const urls = authorizationServerUrls(options.publicUrl, options.issuer, options.jwksUrl);
  const { sealer } = options;

  if (config.clientIdMetadataDocuments.allowPrivateNetworks && options.mode === 'production') {
    throw new GatehouseError(
      'ERR_CONFIG_INVALID',
      'authorizationServer.clientIdMetadataDocuments.allowPrivateNetworks is for development only',
    );
  }
  const cimd = config.clientIdMetadataDocuments.enabled
    ? createCimdResolver({
        fetch:
          options.cimdFetch ??
          createSafeFetch({
            allowPrivateNetworks: config.clientIdMetadataDocuments.allowPrivateNetworks,
            timeoutMs: config.clientIdMetadataDocuments.timeoutMs,
            maxBytes: config.clientIdMetadataDocuments.maxBytes,
            maxRedirects: 3,
          }),
        clock,
        maxBytes: config.clientIdMetadataDocuments.maxBytes,
        // The CIMD draft: "MUST NOT cache error responses".
        failureCacheMs: 0,
        // So limit fetches instead, per client address and per target host.
        beforeFetch: createCimdFetchLimiter({ counters: stores.counters, clock }),
      })
    : undefined;
  const adminResource = options.admin?.resource;
  if (adminResource !== undefined && config.tokenExchange.audiences.includes(adminResource)) {
    throw new GatehouseError(
      'ERR_CONFIG_INVALID',
      'authorizationServer.tokenExchange.audiences: the admin resource cannot be a token-exchange audience',
    );
  }
  const consoleClientOption = options.admin?.consoleClient;
  // The console signs in through this server only where it may redirect: https, or http on loopback.
  if (consoleClientOption !== undefined && !isAllowedRedirectUri(consoleClientOption.redirectUri)) {
    logger.warn(
      { redirectUri: consoleClientOption.redirectUri },
      'admin console sign-in needs an https public URL (or http on a loopback host); the console cannot sign in',
    );
  }
  const consoleClient =
    consoleClientOption === undefined || !isAllowedRedirectUri(consoleClientOption.redirectUri)
      ? undefined
      : preRegisteredToClientRecord({
          clientId: consoleClientOption.clientId,
          redirectUris: [consoleClientOption.redirectUri],
          grantTypes: ['authorization_code'],
          tokenEndpointAuthMethod: 'none',
          clientName: 'Gatehouse admin console',
        });
  const registry = createClientRegistry({
    clients: stores.clients,
    preRegistered: config.clients
      .map((client) =>
        preRegisteredToClientRecord({
          clientId: client.clientId,
          redirectUris: client.redirectUris,
          grantTypes: client.grantTypes,
          ...(client.clientSecret !== undefined && { clientSecret: client.clientSecret }),
          ...(client.clientName !== undefined && { clientName: client.clientName }),
          ...(client.tokenEndpointAuthMethod !== undefined && {
            tokenEndpointAuthMethod: client.tokenEndpointAuthMethod,
          }),
          ...(client.scope !== undefined && { scope: client.scope }),
        }),
      )
      .concat(consoleClient === undefined ? [] : [consoleClient]),
    ...(cimd !== undefined && { cimd }),
    clock,
  });
  const resolveClient = (clientId: string, lookup?: ClientLookup) => registry.get(clientId, lookup);

  const federation =
    config.federation === undefined
      ? undefined
      : createFederation({
          config: config.federation,
          callbackUrl: urls.federationCallback,
          ephemeral: stores.ephemeral,
          upstreamTokens: stores.upstreamTokens,
          sealer,
          clock,
          logger,
          ...(options.federationFetch !== undefined && { fetch: options.federationFetch }),
        });
  const federatedLogin: FederatedLogin | undefined =
    federation === undefined || config.federation === undefined
      ? undefined
      : {
          name: federation.name,
          displayName: federation.displayName,
          begin: (interactionId) => federation.begin(interactionId),
          complete: (url) => federation.complete(url),
        };

  // Local accounts behind a grant, a code or a browser sign-in must still exist, be enabled, and have
  // kept the password they were authenticated with; federated identities are the IdP's to end.
  const accountActive = async (principal: PrincipalSnapshot, authTime?: number): Promise<boolean> =>
    principal.idp !== 'local' ||
    (accounts !== undefined &&
      (await accounts.isActive(principal.subject, authTime ?? Number.POSITIVE_INFINITY)));
  // The admin resource is for administrators only: an enabled local account holding the `admin` role.
  const resourceAllowed = async (resource: string, principal: PrincipalSnapshot): Promise<boolean> => {
    if (adminResource === undefined || canonicalResource(resource) !== canonicalResource(adminResource))
      return true;
    if (principal.idp !== 'local') return false;
    const user = await stores.users.get(principal.subject);
    return user !== undefined && user.disabledAt === undefined && user.roles.includes('admin');
  };
  const grants: GrantContext = {
    stores,
    issuer: createAccessTokenIssuer({ signer: options.signer, ttlSeconds: config.accessTokenTtlSeconds }),
    revocations,
    audit,
    clock,
    accessTokenTtlSeconds: config.accessTokenTtlSeconds,
    refreshTokenTtlSeconds: config.refreshTokenTtlSeconds,
    refreshGraceSeconds: config.refreshGraceSeconds,
    accountActive,
    resourceAllowed,
  };

  const exchange = config.tokenExchange;
  const tokenExchange: TokenExchangeContext | undefined =
    exchange.audiences.length === 0
      ? undefined
      : {
          audiences: new Set(exchange.audiences),
          clients: new Set(
            exchange.clients ??
              config.clients.filter((client) => client.clientSecret !== undefined).map((c) => c.clientId),
          ),
          ttlSeconds: exchange.ttlSeconds,
          verifySubjectToken: options.verifyOwnToken,
          verifyIdentityToken: options.verifyIdentityToken,
          supabaseMinter: options.supabaseMinter,
          revocations,
          accountActive,
          minter: createAudienceTokenMinter({ signer: options.signer, clock }),
          audit,
        };

  const authenticate = async (
    request: Request,
    form: FormParams,
    clientAddress?: string,
  ): Promise<ResolvedClient> => {
    const presented = {
      authorizationHeader: request.headers.get('authorization') ?? undefined,
      clientId: form.get('client_id'),
      clientSecret: form.get('client_secret'),
    };
    const { clientId } = readClientCredentials(presented);
    const client = await registry.get(clientId, { ...(clientAddress !== undefined && { clientAddress }) });
    if (client === undefined) {
      throw new OAuthError('invalid_client', { reason: 'unknown_client', description: 'unknown client' });
    }
    authenticateClient(client, presented);
    return client;
  };

  // A client that registered itself may have to wait for an operator (`gatehouse clients approve`).
  const awaitsApproval = (client: ResolvedClient): boolean =>
    config.dynamicRegistration.requireApproval &&
    client.source === 'registered' &&
    client.approvedAt === undefined;
  const authenticateApproved = async (
    request: Request,
    form: FormParams,
    clientAddress?: string,
  ): Promise<ResolvedClient> => {
    const client = await authenticate(request, form, clientAddress);
    if (awaitsApproval(client)) {
      throw new OAuthError('invalid_client', {
        reason: 'client_not_approved',
        description: `this client awaits an administrator's approval (${approveCommand(client.clientId)})`,
      });
    }
    return client;
  };

  const accounts = config.localAccounts
    ? createLocalAccounts({
        users: stores.users,
        counters: stores.counters,
        clock,
        throttle: {
          maxFailuresPerUsernameAndAddress: config.loginThrottle.perUsernameAndAddress,
          maxFailuresPerAddress: config.loginThrottle.perAddress,
          windowMs: config.loginThrottle.windowMs,
        },
      })
    : undefined;

  const metadata = authorizationServerMetadata({
    urls,
    resource: options.resource,
    scopesSupported: options.scopesSupported,
    dynamicRegistration: config.dynamicRegistration.enabled,
    clientIdMetadataDocuments: cimd !== undefined,
    tokenExchange: tokenExchange !== undefined,
  });

  const register = config.dynamicRegistration.enabled
    ? createRegistrationEndpoint({
        clients: stores.clients,
        counters: stores.counters,
        clock,
        logger,
        events: options.events,
        ...(config.dynamicRegistration.initialAccessToken !== undefined && {
          initialAccessToken: config.dynamicRegistration.initialAccessToken,
        }),
        rateLimit: { perIpPerHour: config.dynamicRegistration.perIpPerHour },
      })
    : undefined;

  const secure = new URL(options.publicUrl).protocol === 'https:';
  const browserSessions = createBrowserSessions({
    ephemeral: stores.ephemeral,
    clock,
    secure,
    interactionTtlSeconds: config.interactionTtlSeconds,
    loginSessionTtlSeconds: config.loginSessionTtlSeconds,
    loginStillValid: (login) => accountActive(login.principal, login.authTime),
  });

  let sweeper: NodeJS.Timeout | undefined;
  /** Removes expired codes, grants, revocations and browser records, a bounded batch each. */
  async function sweep(): Promise<void> {
    const now = clock.now();
    await stores.codes.deleteExpired(now, SWEEP_BATCH);
    // A grant outlives its own expiry by the longest access token it may have issued just before it, so
    // revoking the account (revokeByPrincipal) still reaches those tokens.
    await stores.grants.deleteExpired(now - (config.accessTokenTtlSeconds + 60) * 1000, SWEEP_BATCH);
    await stores.revocations.deleteExpired(now, SWEEP_BATCH);
    await stores.ephemeral.deleteExpired(now, SWEEP_BATCH);
    await stores.counters.deleteExpired?.(now, SWEEP_BATCH);
  }

  const endpoints = new Hono<GatehouseEnv>();
  endpoints.onError((error, c) =>
    renderOAuthEndpointError(error, c.req.raw, { logger, requestId: requestIdOf(c) }),
  );
  // Browser-based clients register, redeem codes and refresh from their page: the endpoints that
  // authenticate the client itself (never by cookie) allow any origin, without credentials.
  for (const path of [
    OAUTH_PATHS.token,
    OAUTH_PATHS.registration,
    OAUTH_PATHS.revocation,
    OAUTH_PATHS.introspection,
  ]) {
    endpoints.use(
      path,
      cors({
        origin: '*',
        allowMethods: ['POST', 'OPTIONS'],
        allowHeaders: ['Authorization', 'Content-Type'],
        exposeHeaders: ['WWW-Authenticate', 'Retry-After'],
        maxAge: 600,
      }),
    );
  }
  for (const path of metadataPaths(urls.issuer)) {
    endpoints.get(path, (c) => c.json(metadata, 200, { 'cache-control': 'public, max-age=300' }));
  }
  const token = createTokenEndpoint({ grants, authenticateClient: authenticateApproved, tokenExchange });
  endpoints.post(OAUTH_PATHS.token, (c) => token(c.req.raw, clientAddressOf(c)));
  const revoke = createRevocationEndpoint({
    grants,
    authenticateClient: authenticate,
    verifyOwnToken: options.verifyOwnToken,
    clock,
  });
  endpoints.post(OAUTH_PATHS.revocation, (c) => revoke(c.req.raw, clientAddressOf(c)));
  const introspect = createIntrospectionEndpoint({
    grants: stores.grants,
    revocations,
    authenticateClient: authenticate,
    verifyOwnToken: options.verifyOwnToken,
    introspectors: new Set(
      config.clients.filter((client) => client.introspection).map((client) => client.clientId),
    ),
    issuer: urls.issuer,
    clock,
  });
  endpoints.post(OAUTH_PATHS.introspection, (c) => introspect(c.req.raw, clientAddressOf(c)));
  if (register !== undefined)
    endpoints.post(OAUTH_PATHS.registration, (c) => register(c.req.raw, clientAddressOf(c)));
  for (const path of [
    OAUTH_PATHS.token,
    OAUTH_PATHS.revocation,
    OAUTH_PATHS.introspection,
    OAUTH_PATHS.registration,
  ]) {
    endpoints.on(['GET', 'PUT', 'DELETE', 'PATCH'], path, () => {
      throw new OAuthError('invalid_request', { reason: 'method_not_allowed', description: 'use POST' });
    });
  }
  const pages = new Hono<GatehouseEnv>();
  pages.onError((error, c) => renderPageError(error, { logger, requestId: requestIdOf(c) }));
  mountBrowserRoutes(pages, {
    urls,
    sessions: browserSessions,
    authorizeContext: {
      resolveClient,
      resources: adminResource === undefined ? [options.resource] : [options.resource, adminResource],
      scopesSupported: options.scopesSupported,
      defaultScopes: options.defaultScopes,
    },
    resolveClient,
    codes: stores.codes,
    consents: stores.consents,
    accounts,
    federation: federatedLogin,
    trustedClients: new Set([
      ...config.clients.filter((client) => client.trusted).map((client) => client.clientId),
      ...(consoleClient === undefined ? [] : [consoleClient.clientId]),
    ]),
    resourceAllowed,
    scopeDescriptions: {},
    codeTtlSeconds: config.codeTtlSeconds,
    consentTtlSeconds: config.consentTtlSeconds,
    clientIp: clientAddressOf,
    counters: stores.counters,
    awaitsApproval,
    audit,
    events: options.events,
    clock,
    logger,
  });

  return {
    urls,
    metadata,
    revocations,
    accounts,
    sealer,
    federation,
    endpoints,
    pages,
    browserSessions,
    start() {
      sweeper ??= setInterval(() => {
        sweep().catch((error: unknown) => logger.warn({ err: error }, 'authorization-server sweep failed'));
      }, SWEEP_INTERVAL_MS);
      sweeper.unref();
    },
    close() {
      federation?.close();
      if (sweeper !== undefined) clearInterval(sweeper);
      sweeper = undefined;
    },
  };
}
