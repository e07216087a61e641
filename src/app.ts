import { mkdirSync } from 'node:fs';
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { createStatelessBridge } from './bridge/stateless.js';
import { createUpstreamConnector, type UpstreamConnector } from './bridge/upstream.js';
import { assertProductionReady } from './config/production.js';
import type {
  GatehouseConfig,
  StdioUpstreamConfig,
  UpstreamConfig,
  VerifierConfig,
} from './config/schema.js';
import { createDiagnostics, type Diagnostics } from './diagnostics/tools.js';
import {
  type CredentialBroker,
  type CredentialCache,
  combineCredentialBrokers,
  createCredentialCache,
} from './downstream/credential-broker.js';
import { supabaseCredentialBroker, supabaseMinterFromConfig } from './downstream/minted-token.js';
import { GatehouseError } from './errors/gatehouse-error.js';
import { OAuthError } from './errors/oauth-error.js';
import { renderError, renderOAuthEndpointError } from './errors/render.js';
import { type Authenticated, authenticate, type BearerVerifier } from './guard/bearer.js';
import { createOriginPolicy } from './guard/origin.js';
import { protectedResourceMetadata, protectedResourceMetadataPath } from './guard/protected-resource.js';
import type { SafeFetch } from './net/safe-fetch.js';
import { OAUTH_PATHS } from './oauth/metadata.js';
import { PAGE_HEADERS, renderMessagePage } from './oauth/pages/index.js';
import { withRevocation } from './oauth/revocation-list.js';
import { type AuthorizationServer, createAuthorizationServer } from './oauth/server.js';
import { type Clock, systemClock } from './ops/clock.js';
import { createLogger, type Logger } from './ops/logger.js';
import { createMemoryRateLimiter } from './ops/ratelimit.js';
import { createSessionManager, type SessionManager, startSweeper } from './sessions/manager.js';
import { openStores } from './stores/open.js';
import type { Stores } from './stores/ports.js';
import { createVerificationCache, type VerificationCache } from './tokens/cache.js';
import { createJwksVerifier } from './tokens/jwks-verifier.js';
import type { KeyStore } from './tokens/keys.js';
import { createLocalVerifier } from './tokens/local-verifier.js';
import { openDeploymentKeys } from './tokens/open-keys.js';
import { createSecretVerifier } from './tokens/secret-verifier.js';
import { createTokenSigner, IDENTITY_TOKEN_TYPE, type TokenSigner } from './tokens/sign.js';
import type { TokenVerifier } from './tokens/verifier.js';
import { createLegacySseEndpoint, type LegacySseEndpoint } from './transports/legacy-sse.js';
import { createStreamableHttpEndpoint, type StreamableHttpEndpoint } from './transports/streamable-http.js';
import { createWebSocketEndpoint, type WebSocketEndpoint } from './transports/websocket.js';

/** URLs derived once from the configuration; every published URL comes from here. */
export interface GatewayUrls {
  /** Base URL clients use (no trailing slash). */
  readonly publicUrl: string;
  /** The MCP endpoint: the RFC 8707 resource identifier and the `aud` of tokens for it. */
  readonly resource: string;
  /** `iss` of the tokens Gatehouse signs. */
  readonly issuer: string;
  readonly resourceMetadataUrl: string;
  readonly jwksUrl: string;
}

export interface GatewayDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Use these stores instead of the configured ones (the caller closes them). */
  readonly stores?: Stores;
  /** The upstream to use when the configuration names none (the CLI passes the bundled demo). */
  readonly defaultUpstream?: () => StdioUpstreamConfig;
  /**
   * The fetch for Client ID Metadata Documents, replacing the one built from
   * `authorizationServer.clientIdMetadataDocuments` (tests and private CAs:
   * `createSafeFetch({ ca })`). Keep it a `createSafeFetch`: documents are fetched from URLs anyone names.
   */
  readonly cimdFetch?: SafeFetch;
  /**
   * Derives per-user credentials (for example cloud credentials for the user's own role). Results are
   * cached per session (and per user for stateless traffic), never used past their `expiresAt`, and
   * dropped when the session ends. Gateway mode adds their `env` to a stdio upstream's environment; a
   * child whose credentials expired is replaced before its next request. Other code reads them with
   * `gateway.credentials.getCredentials(principal, sessionId)`.
   *
   * @example
   * createGateway(config, {
   *   credentialBroker: async (principal) => ({ env: { TENANT: principal.subject }, expiresAt: Date.now() + 3_600_000 }),
   * });
   */
  readonly credentialBroker?: CredentialBroker;
  /**
   * Library mode: the MCP server runs in this process (see `createGatehouse`), so no upstream is needed
   * and the gateway mounts no MCP endpoint, legacy SSE or WebSocket route of its own. Default false.
   */
  readonly inProcess?: boolean;
}

export interface Gateway {
  /** The Hono app; `app.request(...)` serves a request in-process, `app.fetch` plugs into any server. */
  readonly app: Hono;
  readonly urls: GatewayUrls;
  readonly config: GatehouseConfig;
  readonly keys: KeyStore;
  readonly signer: TokenSigner;
  readonly sessions: SessionManager;
  readonly verification: VerificationCache;
  readonly stores: Stores;
  readonly logger: Logger;
  readonly endpoint: StreamableHttpEndpoint;
  /** The legacy 2024-11-05 HTTP+SSE transport, unless `legacySse.enabled` is false. */
  readonly legacySse: LegacySseEndpoint | undefined;
  /** MCP over WebSocket (`serveGateway` routes the HTTP server's upgrades to it), unless `websocket.enabled` is false. */
  readonly websocket: WebSocketEndpoint | undefined;
  /** The built-in authorization server, unless `authorizationServer.enabled` is false. */
  readonly authorizationServer: AuthorizationServer | undefined;
  /** The credential broker's cache, when `deps.credentialBroker` or `downstream.supabase` is set. */
  readonly credentials: CredentialCache | undefined;
  /**
   * Verifies a token with the request path's verifiers and revocation check, but caches nothing (so
   * checking a token signs nobody in): what `gatehouse_validate_token` uses.
   */
  readonly tokenValidator: BearerVerifier;
  /**
   * Checks the request's Origin and authenticates its bearer token exactly as the MCP endpoint does (same
   * verifiers, verification cache, revocation set and required scopes). Throws `OAuthError` /
   * `GatehouseError`; render them with {@link Gateway.renderError}.
   */
  authenticate(request: Request): Promise<Authenticated>;
  /** The MCP endpoint's error boundary: 401/403 with the `WWW-Authenticate` challenge, JSON-RPC errors otherwise. */
  renderError(error: unknown): Response;
  /** Starts background work (the session sweeper). */
  start(): void;
  /** Stops background work, every upstream and, unless they were injected, the stores. */
  close(): Promise<void>;
}

export function gatewayUrls(config: GatehouseConfig, boundPort?: number): GatewayUrls {
  const port = boundPort ?? config.server.port;
  const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  const publicUrl = (config.server.publicUrl ?? `http://${host}:${port}`).replace(/\/+$/, '');
  const resource = `${publicUrl}${config.server.mcpPath}`;
  return {
    publicUrl,
    resource,
    issuer: config.auth.issuer ?? `${publicUrl}/`,
    resourceMetadataUrl: `${publicUrl}${protectedResourceMetadataPath(resource)}`,
    jwksUrl: `${publicUrl}/.well-known/jwks.json`,
  };
}

/**
 * Assembles a gateway from a validated configuration. Nothing listens yet: serve `gateway.app.fetch`
 * (see `serveGateway`) or call `gateway.app.request(...)` in-process.
 *
 * @param boundPort The port actually bound when `server.port` is 0, so published URLs are right.
 */
export async function createGateway(
  config: GatehouseConfig,
  deps: GatewayDeps = {},
  boundPort?: number,
): Promise<Gateway> {
  assertProductionReady(config);
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger ?? createLogger({ level: config.log.level });
  const urls = gatewayUrls(config, boundPort);
  const upstream: UpstreamConfig | undefined = config.upstream ?? deps.defaultUpstream?.();
  if (upstream === undefined && deps.inProcess !== true) {
    throw new GatehouseError(
      'ERR_CONFIG_INVALID',
      'no upstream configured: set upstream (stdio command or http url)',
    );
  }

  const persistent = config.store.kind === 'sqlite';
  if (persistent) mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const stores = deps.stores ?? openStores(config);
  const { secretKeySource, sealer, keys } = await openDeploymentKeys(config, stores, clock);
  logger.info({ source: secretKeySource }, 'secret key');
  for (const note of keys.notes) logger.info({ key: note }, 'signing key');
  const signer = createTokenSigner({ keys, issuer: urls.issuer, clock });

  const localVerifier = createLocalVerifier({
    keys,
    issuer: urls.issuer,
    audience: urls.resource,
    clockToleranceSeconds: config.auth.clockToleranceSeconds,
    clock,
  });
  const verifiers: TokenVerifier[] = [
    localVerifier,
    ...config.auth.verifiers.map((verifier) => buildVerifier(verifier, config, clock)),
  ];
  const verification = createVerificationCache({
    verifiers,
    maxEntries: config.auth.cacheMaxEntries,
    maxTtlMs: config.auth.cacheMaxTtlMs,
    clock,
  });

  const supabase =
    config.downstream.supabase === undefined
      ? undefined
      : {
          minter: supabaseMinterFromConfig(config.downstream.supabase, clock),
          env: config.downstream.supabase.env,
        };
  // The identity tokens an HTTP upstream receives may be exchanged (RFC 8693) by that service.
  const identityVerifier =
    upstream?.kind === 'http'
      ? createLocalVerifier({
          keys,
          issuer: urls.issuer,
          audience: upstream.audience ?? upstream.url,
          clockToleranceSeconds: config.auth.clockToleranceSeconds,
          clock,
          name: 'gatehouse-identity',
          typ: IDENTITY_TOKEN_TYPE,
        })
      : undefined;

  const scopesSupported = config.auth.scopesSupported ?? config.auth.requiredScopes;
  const authorizationServer = config.authorizationServer.enabled
    ? createAuthorizationServer({
        config: config.authorizationServer,
        mode: config.mode,
        publicUrl: urls.publicUrl,
        issuer: urls.issuer,
        jwksUrl: urls.jwksUrl,
        resource: urls.resource,
        scopesSupported,
        defaultScopes: config.auth.requiredScopes,
        stores,
        signer,
        verifyOwnToken: (token) => localVerifier.verify(token),
        verifyIdentityToken: identityVerifier && ((token) => identityVerifier.verify(token)),
        supabaseMinter: supabase?.minter,
        ...(deps.cimdFetch !== undefined && { cimdFetch: deps.cimdFetch }),
        sealer,
        clock,
        logger,
      })
    : undefined;
  if (authorizationServer !== undefined) await authorizationServer.start();

  const sessions = createSessionManager({ store: stores.sessions, config: config.sessions, clock, logger });
  // Credentials each user's tools receive: the operator's broker and, with downstream.supabase, a
  // Supabase user token (a stdio child's environment; library mode's context).
  const brokers = [
    ...(deps.credentialBroker === undefined ? [] : [deps.credentialBroker]),
    ...(supabase === undefined ? [] : [supabaseCredentialBroker(supabase.minter, supabase.env)]),
  ];
  const credentials =
    brokers.length === 0
      ? undefined
      : createCredentialCache({
          broker: combineCredentialBrokers(brokers),
          clock,
        });
  if (credentials !== undefined) sessions.onEnded((id) => credentials.dropSession(id));
  const connector =
    upstream === undefined
      ? inProcessConnector()
      : createUpstreamConnector({ upstream, signer, clock, logger, credentials });
  // Same verifiers and revocation check as requests, through a cache that stores nothing.
  const tokenValidator = withRevocationIfIssuing(
    createVerificationCache({ verifiers, maxEntries: 0, maxTtlMs: 1, clock }),
    authorizationServer,
    localVerifier.name,
  );
  const diagnostics: Diagnostics | undefined = config.diagnostics.enabled
    ? createDiagnostics({
        validator: tokenValidator,
        sessions,
        verificationStats: () => verification.stats(),
        requiredScopes: config.auth.requiredScopes,
        credentials,
        clock,
      })
    : undefined;
  const stateless = createStatelessBridge({
    connector,
    diagnostics,
    logger,
    idleMs: upstream?.kind === 'stdio' ? upstream.statelessIdleMs : 5 * 60_000,
    maxBodyBytes: config.server.maxBodyBytes,
  });
  // One bearer verifier for every client-facing transport, so all refuse revoked tokens alike.
  const bearerVerifier =
    authorizationServer === undefined
      ? verification
      : withRevocation(
          verification,
          authorizationServer.revocations,
          (p) => p.verifier === localVerifier.name,
        );
  const endpoint = createStreamableHttpEndpoint({
    verifier: bearerVerifier,
    requiredScopes: config.auth.requiredScopes,
    isOriginAllowed: createOriginPolicy(config.server.allowedOrigins),
    sessions,
    connector,
    stateless,
    maxBodyBytes: config.server.maxBodyBytes,
    startTimeoutMs: upstreamStartTimeoutMs(upstream),
    diagnostics,
    logger,
  });
  const legacySse =
    config.legacySse.enabled && upstream !== undefined
      ? createLegacySseEndpoint({
          verifier: bearerVerifier,
          requiredScopes: config.auth.requiredScopes,
          isOriginAllowed: createOriginPolicy(config.server.allowedOrigins),
          sessions,
          connector,
          maxBodyBytes: config.server.maxBodyBytes,
          ssePath: config.legacySse.ssePath,
          messagesPath: config.legacySse.messagesPath,
          keepAliveMs: config.legacySse.keepAliveMs,
          maxQueuedBytes: config.legacySse.maxQueuedBytes,
          sessionTouchIntervalMs: Math.min(60_000, Math.ceil(config.sessions.idleTimeoutMs / 4)),
          startTimeoutMs: upstreamStartTimeoutMs(upstream),
          diagnostics,
          clock,
          logger,
        })
      : undefined;

  const renderContext = {
    resourceMetadataUrl: urls.resourceMetadataUrl,
    scope: config.auth.requiredScopes,
    logger,
  };
  const websocket =
    config.websocket.enabled && upstream !== undefined
      ? createWebSocketEndpoint({
          path: config.websocket.path,
          verifier: bearerVerifier,
          requiredScopes: config.auth.requiredScopes,
          isOriginAllowed: createOriginPolicy(config.server.allowedOrigins),
          sessions,
          connector,
          perUserLimiter: createMemoryRateLimiter({
            points: config.websocket.connectPerUserPerMinute,
            durationSeconds: 60,
            keyPrefix: 'ws-connect-user',
          }),
          perIpLimiter: createMemoryRateLimiter({
            points: config.websocket.connectPerIpPerMinute,
            durationSeconds: 60,
            keyPrefix: 'ws-connect-ip',
          }),
          helloTimeoutMs: config.websocket.helloTimeoutMs,
          maxMessageBytes: config.websocket.maxMessageBytes ?? config.server.maxBodyBytes,
          maxBufferedBytes: config.websocket.maxBufferedBytes,
          heartbeatIntervalMs: config.websocket.heartbeatIntervalMs,
          sessionTouchIntervalMs: Math.min(60_000, Math.ceil(config.sessions.idleTimeoutMs / 4)),
          renderError: (error) => renderError(error, renderContext),
          diagnostics,
          clock,
          logger,
        })
      : undefined;
  const metadata = protectedResourceMetadata({
    resource: urls.resource,
    authorizationServers: authorizationServers(config, urls),
    scopesSupported,
  });

  const app = new Hono();
  app.onError((error, c) => {
    const path = c.req.path;
    if (BROWSER_PATHS.some((prefix) => path.startsWith(prefix))) return renderPageError(error, logger);
    if (path.startsWith('/oauth/')) return renderOAuthEndpointError(error, c.req.raw, logger);
    return renderError(error, renderContext);
  });
  app.notFound(() => renderError(new GatehouseError('ERR_NOT_FOUND', 'Not found'), renderContext));

  // Discovery documents are public and carry no credentials: any origin may read them (browser-based
  // MCP clients such as the Inspector discover from the page).
  app.use('/.well-known/*', cors({ origin: '*', allowMethods: ['GET', 'HEAD', 'OPTIONS'], maxAge: 600 }));
  // RFC 9728 §3.1 path form, then the root form that older clients probe.
  app.get(protectedResourceMetadataPath(urls.resource), (c) => c.json(metadata));
  app.get('/.well-known/oauth-protected-resource', (c) => c.json(metadata));
  app.get('/.well-known/jwks.json', (c) =>
    c.json(keys.publicJwks(), 200, { 'cache-control': 'public, max-age=300' }),
  );
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    try {
      await stores.sessions.get('readiness-probe', clock.now());
      return c.json({ status: 'ready', store: stores.kind });
    } catch (error) {
      logger.error({ err: error }, 'store not ready');
      return c.json({ status: 'unavailable', store: stores.kind }, 503);
    }
  });
  authorizationServer?.mount(app);
  if (upstream !== undefined) app.all(config.server.mcpPath, (c) => endpoint.handle(c.req.raw));
  legacySse?.mount(app);
  const isOriginAllowed = createOriginPolicy(config.server.allowedOrigins);

  let sweeper: { stop(): void } | undefined;
  let keyRefresher: NodeJS.Timeout | undefined;
  logger.info(
    {
      resource: urls.resource,
      upstream: upstream === undefined ? 'in-process' : connector.describe(),
      store: stores.kind,
      verifiers: verifiers.map((v) => v.name),
      signingKey: keys.describe().kid,
    },
    'gateway ready',
  );

  return {
    app,
    urls,
    config,
    keys,
    signer,
    sessions,
    verification,
    tokenValidator,
    stores,
    logger,
    endpoint,
    legacySse,
    websocket,
    authorizationServer,
    credentials,
    async authenticate(request) {
      if (!isOriginAllowed(request.headers.get('origin') ?? undefined)) {
        throw new GatehouseError('ERR_ORIGIN_FORBIDDEN', 'Origin not allowed');
      }
      return authenticate(
        request.headers.get('authorization') ?? undefined,
        bearerVerifier,
        config.auth.requiredScopes,
      );
    },
    renderError: (error) => renderError(error, renderContext),
    start() {
      sweeper ??= startSweeper(sessions, config.sessions.sweepIntervalMs, logger);
      keyRefresher ??= setInterval(() => {
        keys.refresh().catch((error: unknown) => logger.error({ err: error }, 'signing-key refresh failed'));
      }, KEY_REFRESH_MS);
      keyRefresher.unref();
    },
    async close() {
      sweeper?.stop();
      if (keyRefresher !== undefined) clearInterval(keyRefresher);
      authorizationServer?.close();
      await endpoint.close();
      await legacySse?.close();
      await websocket?.close();
      await stateless.close();
      if (deps.stores === undefined) await stores.close();
    },
  };
}

/** Builds the verifier one `auth.verifiers` entry describes (also used by `gatehouse doctor`). */
export function buildVerifier(
  verifier: VerifierConfig,
  config: GatehouseConfig,
  clock: Clock,
): TokenVerifier {
  const clockToleranceSeconds = config.auth.clockToleranceSeconds;
  if (verifier.kind === 'hs256') {
    if (verifier.secret === undefined) {
      throw new GatehouseError('ERR_CONFIG_INVALID', `verifier ${verifier.name}: secret was not loaded`);
    }
    return createSecretVerifier({
      name: verifier.name,
      secret: verifier.secret,
      issuer: verifier.issuer,
      audience: verifier.audience,
      clockToleranceSeconds,
      clock,
    });
  }
  return createJwksVerifier({
    name: verifier.name,
    jwksUrl: verifier.jwksUrl,
    issuer: verifier.issuer,
    audience: verifier.audience,
    algorithms: verifier.algorithms,
    timeoutMs: verifier.timeoutMs,
    cooldownMs: verifier.cooldownMs,
    cacheMaxAgeMs: verifier.cacheMaxAgeMs,
    clockToleranceSeconds,
    clock,
  });
}

function upstreamStartTimeoutMs(upstream: UpstreamConfig | undefined): number {
  if (upstream === undefined) return 0;
  return upstream.kind === 'stdio' ? upstream.startTimeoutMs : upstream.requestTimeoutMs;
}

/** Library mode has no upstream; nothing routes to one, and anything that tried would fail loudly. */
function inProcessConnector(): UpstreamConnector {
  return {
    kind: 'http',
    describe: () => 'in-process',
    open() {
      throw new GatehouseError('ERR_UPSTREAM_UNAVAILABLE', 'no upstream: the MCP server runs in-process');
    },
  };
}

function withRevocationIfIssuing(
  verifier: BearerVerifier,
  authorizationServer: AuthorizationServer | undefined,
  localVerifierName: string,
): BearerVerifier {
  return authorizationServer === undefined
    ? verifier
    : withRevocation(verifier, authorizationServer.revocations, (p) => p.verifier === localVerifierName);
}

/** How often the signing keys are reloaded and rotated when due. */
const KEY_REFRESH_MS = 60_000;

const BROWSER_PATHS = [OAUTH_PATHS.authorization, OAUTH_PATHS.interaction, OAUTH_PATHS.federationCallback];

/** Pages answer errors with a page, never JSON: a person is reading. */
function renderPageError(error: unknown, logger: Logger): Response {
  const known = error instanceof OAuthError || error instanceof GatehouseError;
  const status = known ? error.status : 500;
  if (!known || status >= 500) logger.error({ err: error }, 'sign-in page failed');
  const body = renderMessagePage({
    tone: 'error',
    title: status >= 500 ? 'Something went wrong' : 'This request is not valid',
    message:
      status >= 500
        ? 'Gatehouse could not complete the sign-in. Try again in a moment.'
        : 'Go back to your app and connect again.',
    ...(known && { detail: error.code }),
  });
  return new Response(body, { status, headers: PAGE_HEADERS });
}

/** RFC 9728 `authorization_servers`: Gatehouse itself, or the issuers of the configured verifiers. */
function authorizationServers(config: GatehouseConfig, urls: GatewayUrls): string[] {
  if (config.authorizationServer.enabled) return [urls.issuer];
  const external = config.auth.verifiers.flatMap((verifier) =>
    verifier.issuer === undefined ? [] : [verifier.issuer],
  );
  return external.length > 0 ? [...new Set(external)] : [urls.issuer];
}
