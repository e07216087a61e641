import { isIP } from 'node:net';
import type { TracerProvider } from '@opentelemetry/api';
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { createAdminApi, createAdminRoleCheck } from '../admin/api.js';
import { CONSOLE_CALLBACK_PATH, CONSOLE_CLIENT_ID, createAdminConsole } from '../admin/console/app.js';
import { type AdminService, createAdminService } from '../admin/service.js';
import type { UpstreamTimeouts } from '../bridge/connection.js';
import { createInterceptorChain, type Interceptor } from '../bridge/interceptors.js';
import { createLiveRegistry, type LiveRegistry } from '../bridge/registry.js';
import { createStatelessBridge } from '../bridge/stateless.js';
import { createToolCallEvents } from '../bridge/tool-events.js';
import { createUpstreamConnector, type UpstreamConnector } from '../bridge/upstream.js';
import { createUpstreamProbe, probeCommand, type UpstreamProbe } from '../bridge/upstream-probe.js';
import { assertProductionReady } from '../config/production.js';
import type { GatehouseConfig, StdioUpstreamConfig, UpstreamConfig } from '../config/schema.js';
import { type GatewayUrls, gatewayUrls, protectedResourceMetadataPath } from '../config/urls.js';
import { createDiagnosticsInterceptor } from '../diagnostics/interceptor.js';
import { createDiagnostics } from '../diagnostics/tools.js';
import {
  type CredentialBroker,
  type CredentialCache,
  combineCredentialBrokers,
  createCredentialCache,
} from '../downstream/credential-broker.js';
import { supabaseCredentialBroker, supabaseMinterFromConfig } from '../downstream/minted-token.js';
import { GatehouseError } from '../errors/gatehouse-error.js';
import type { Authenticated, BearerVerifier } from '../guard/bearer.js';
import {
  createGuard,
  type Guard,
  type GuardedEnv,
  type GuardLimits,
  withRevocation,
} from '../guard/guard.js';
import { protectedResourceMetadata } from '../guard/protected-resource.js';
import { renderGuardedError } from '../guard/render.js';
import type { Principal } from '../identity/principal.js';
import { createClientAddressResolver, UNKNOWN_ADDRESS } from '../net/client-address.js';
import { createHostPolicy, hostnameOfHost } from '../net/host.js';
import { type GatehouseEnv, requestIdOf } from '../net/request-context.js';
import type { SafeFetch } from '../net/safe-fetch.js';
import { OAUTH_PATHS } from '../oauth/metadata.js';
import { type AuthorizationServer, createAuthorizationServer } from '../oauth/server.js';
import { type AuditWriter, createAuditWriter, subscribeAuditLog } from '../ops/audit.js';
import { type Clock, systemClock } from '../ops/clock.js';
import { createEventBus, type EventBus } from '../ops/events.js';
import { createLogger, type Logger } from '../ops/logger.js';
import {
  createGatewayMetrics,
  type GatewayMetrics,
  type MetricsServer,
  metricsResponder,
  routeGroups,
  serveMetrics,
} from '../ops/metrics.js';
import { traceStores } from '../ops/traced-stores.js';
import { createTracing, subscribeTracing } from '../ops/tracing.js';
import { createSessionManager, type SessionManager, startSweeper } from '../sessions/manager.js';
import { openStores } from '../stores/open.js';
import type { Stores } from '../stores/ports.js';
import { gatewayVerifiers } from '../tokens/build-verifier.js';
import { createVerificationCache, type VerificationCache } from '../tokens/cache.js';
import type { KeyStore } from '../tokens/keys.js';
import { createLocalVerifier } from '../tokens/local-verifier.js';
import { openDeploymentKeys } from '../tokens/open-keys.js';
import { createRevocationList, type RevocationList } from '../tokens/revocation.js';
import { createTokenSigner, IDENTITY_TOKEN_TYPE, type TokenSigner } from '../tokens/sign.js';
import type { TokenVerifier } from '../tokens/verifier.js';
import { createLegacySseEndpoint, type LegacySseEndpoint } from '../transports/legacy-sse.js';
import { createStreamableHttpEndpoint, type StreamableHttpEndpoint } from '../transports/streamable-http.js';
import { createWebSocketEndpoint, type WebSocketEndpoint } from '../transports/websocket.js';
import {
  answersInCallerScope,
  createEdgeApp,
  type HostCheck,
  upgradeClientAddress,
  upstreamsOutsideRequests,
  withUpgradeHostCheck,
  withUpgradeScope,
} from './app.js';
import { createGatewayDrain, type GatewayDrain } from './drain.js';
import { createHealthApp } from './health.js';
import { createLandingApp } from './landing.js';
import { requestSpan } from './request-span.js';

export type { GatewayUrls };
export { gatewayUrls };

export interface GatewayDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** The event stream to report on (audit, metrics and tracing subscribe to it). Default: a new one, logged as audit lines. */
  readonly events?: EventBus;
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
  /**
   * Record spans with this OpenTelemetry provider (tracing on, whatever `tracing.enabled` says) instead of
   * the one `tracing` configures; the caller shuts it down (`close()` only flushes it). Tests pass a
   * `BasicTracerProvider` with an `InMemorySpanExporter`.
   */
  readonly tracerProvider?: TracerProvider;
}

export interface Gateway {
  /** The Hono app; `app.request(...)` serves a request in-process, `app.fetch` plugs into any server. */
  readonly app: Hono<GatehouseEnv>;
  readonly urls: GatewayUrls;
  readonly config: GatehouseConfig;
  readonly keys: KeyStore;
  readonly signer: TokenSigner;
  readonly sessions: SessionManager;
  readonly verification: VerificationCache;
  readonly stores: Stores;
  readonly logger: Logger;
  /** Everything that happens, as typed events: subscribe for audit, metrics, tracing. */
  readonly events: EventBus;
  /** Revoked tokens Gatehouse issued, refused on every transport. */
  readonly revocations: RevocationList;
  /** The resource server's guard: Origin, bearer, revocation, scopes. */
  readonly guard: Guard;
  readonly endpoint: StreamableHttpEndpoint;
  /** The legacy 2024-11-05 HTTP+SSE transport, unless `legacySse.enabled` is false. */
  readonly legacySse: LegacySseEndpoint | undefined;
  /** MCP over WebSocket (`serveGateway` routes the HTTP server's upgrades to it), unless `websocket.enabled` is false. */
  readonly websocket: WebSocketEndpoint | undefined;
  /** The built-in authorization server, unless `authorizationServer.enabled` is false. */
  readonly authorizationServer: AuthorizationServer | undefined;
  /** The credential broker's cache, when `deps.credentialBroker` or `downstream.supabase` is set. */
  readonly credentials: CredentialCache | undefined;
  /** Whether the upstream can be used (nothing spawned, no token sent); `undefined` in library mode. */
  readonly upstreamProbe: UpstreamProbe | undefined;
  /** The operator's verbs (what the admin API and console call), unless `admin.enabled` is false. */
  readonly admin: AdminService | undefined;
  /** The stored audit log's writer, unless `audit.enabled` is false; `close()` flushes it. */
  readonly audit: AuditWriter | undefined;
  /** This gateway's Prometheus metrics, unless `metrics.enabled` is false. */
  readonly metrics: GatewayMetrics | undefined;
  /**
   * The metrics port's server once `start()` bound it (`metrics.port`); resolves `undefined` when metrics
   * are served on the main port, or off.
   */
  metricsServer(): Promise<MetricsServer | undefined>;
  /** Graceful shutdown: whether the instance drains, and the WebSocket / legacy SSE calls still in flight. */
  readonly drain: GatewayDrain;
  /**
   * Verifies a token with the request path's verifiers and revocation check, but caches nothing (so
   * checking a token signs nobody in): what `gatehouse_validate_token` uses.
   */
  readonly tokenValidator: BearerVerifier;
  /**
   * Checks the request's Origin and authenticates its bearer token exactly as the MCP endpoint does (the
   * guard). Throws `OAuthError` / `GatehouseError`; render them with {@link Gateway.renderError}.
   */
  authenticate(request: Request, clientAddress?: string): Promise<Authenticated>;
  /** The MCP endpoint's error boundary: 401/403 with the `WWW-Authenticate` challenge, JSON-RPC errors otherwise. */
  renderError(error: unknown, requestId?: string): Response;
  /** Starts background work (the session sweeper, key refresh, revocation poll). */
  start(): void;
  /** Stops background work, every upstream and, unless they were injected, the stores. */
  close(): Promise<void>;
}

/** How often the signing keys are reloaded and rotated when due. */
const KEY_REFRESH_MS = 60_000;
/** The fallback poll of revocations (each request already checks the store's watermark). */
const REVOCATION_POLL_MS = 5_000;

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
  const logger = deps.logger ?? createLogger(config.log);
  const events = deps.events ?? createEventBus(logger);
  const unsubscribeAudit = subscribeAuditLog(events, logger);
  const urls = gatewayUrls(config, boundPort);
  const upstream: UpstreamConfig | undefined = config.upstream ?? deps.defaultUpstream?.();
  if (upstream === undefined && deps.inProcess !== true) {
    throw new GatehouseError(
      'ERR_CONFIG_INVALID',
      'no upstream configured: set upstream (stdio command or http url)',
    );
  }
  // A command that cannot run never will: refuse to start rather than answer every user with 502.
  if (upstream?.kind === 'stdio') {
    const health = await probeCommand(upstream);
    if (!health.ok) throw new GatehouseError('ERR_CONFIG_INVALID', `upstream.command: ${health.detail}`);
  }

  const tracing = await createTracing(config.tracing, { tracerProvider: deps.tracerProvider, logger });
  const unsubscribeTracing = subscribeTracing(events, tracing);
  const stores = traceStores(deps.stores ?? (await openStores(config)), tracing);
  // The stored audit log: written in the background, never in a request's way (see createAuditWriter).
  const audit = config.audit.enabled
    ? createAuditWriter({
        store: stores.audit,
        clock,
        logger,
        queueMax: config.audit.queueMax,
        retentionDays: config.audit.retentionDays,
      })
    : undefined;
  const unsubscribeAuditWriter = audit && events.subscribe((event) => audit.record(event));
  // Read at scrape time from what this instance holds; the parts named are assembled below.
  const metrics = config.metrics.enabled
    ? createGatewayMetrics({
        sources: {
          verification: () => verification.stats(),
          activeSessions: () => registry.size,
          upstreamConnections: () => registry.size + stateless.connectedUsers(),
          audit: () => audit?.stats(),
        },
        routeGroup: routeGroups({
          mcp: [
            config.server.mcpPath,
            ...(config.legacySse.enabled ? [config.legacySse.ssePath, config.legacySse.messagesPath] : []),
            ...(config.websocket.enabled ? [config.websocket.path] : []),
          ],
          oauthToken: OAUTH_PATHS.token,
          oauthAuthorize: OAUTH_PATHS.authorization,
          oauthPrefix: '/oauth/',
          admin: '/admin',
          health: ['/healthz', '/readyz'],
          metrics: config.metrics.port === undefined ? config.metrics.path : undefined,
        }),
        upstreamKind: upstream?.kind ?? 'in-process',
      })
    : undefined;
  const unsubscribeMetrics = metrics && events.subscribe((event) => metrics.observeEvent(event));
  const { secretKeySource, sealer, keys } = await openDeploymentKeys(config, stores, clock);
  logger.info({ source: secretKeySource }, 'secret key');
  for (const note of keys.notes) logger.info({ key: note }, 'signing key');
  const signer = createTokenSigner({ keys, issuer: urls.issuer, clock });

  const built = gatewayVerifiers(config, { keys, issuer: urls.issuer, audience: urls.resource }, clock);
  const localVerifier = built.local as TokenVerifier;
  const isOwnToken = (principal: Principal) => principal.verifier === localVerifier.name;
  const verifiers = built.all;
  const verification = createVerificationCache({
    verifiers,
    maxEntries: config.auth.cacheMaxEntries,
    maxTtlMs: config.auth.cacheMaxTtlMs,
    clock,
  });
  // Tokens Gatehouse signed (issued by its authorization server, or development tokens) can be revoked.
  const revocations = createRevocationList({ store: stores.revocations, clock, logger, bus: stores.bus });
  await revocations.refresh();

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
        revocations,
        clock,
        logger,
        events,
        admin: config.admin.enabled
          ? {
              resource: urls.adminResource,
              consoleClient: {
                clientId: CONSOLE_CLIENT_ID,
                redirectUri: `${urls.publicUrl}${CONSOLE_CALLBACK_PATH}`,
              },
            }
          : undefined,
      })
    : undefined;

  const sessions = createSessionManager({
    store: stores.sessions,
    config: config.sessions,
    clock,
    logger,
    events,
    bus: stores.bus,
  });
  const registry: LiveRegistry = createLiveRegistry(sessions);
  // Credentials each user's tools receive: the operator's broker and, with downstream.supabase, a
  // Supabase user token (a stdio child's environment; library mode's context).
  const brokers = [
    ...(deps.credentialBroker === undefined ? [] : [deps.credentialBroker]),
    ...(supabase === undefined ? [] : [supabaseCredentialBroker(supabase.minter, supabase.env)]),
  ];
  const credentials =
    brokers.length === 0
      ? undefined
      : createCredentialCache({ broker: combineCredentialBrokers(brokers), clock });
  if (credentials !== undefined) sessions.onEnded((id) => credentials.dropSession(id));
  const connector =
    upstream === undefined
      ? inProcessConnector()
      : upstreamsOutsideRequests(
          createUpstreamConnector({ upstream, signer, clock, logger, credentials, tracing }),
        );
  const upstreamProbe = upstream === undefined ? undefined : createUpstreamProbe(upstream, { clock });

  // Same verifiers and revocation check as requests, through a cache that stores nothing.
  const tokenValidator = withRevocation(
    createVerificationCache({ verifiers, maxEntries: 0, maxTtlMs: 1, clock }),
    revocations,
    isOwnToken,
  );
  const diagnostics = config.diagnostics.enabled
    ? createDiagnostics({
        validator: tokenValidator,
        sessions,
        verificationStats: () => verification.stats(),
        requiredScopes: config.auth.requiredScopes,
        credentials,
        clock,
      })
    : undefined;
  // One chain on every path to the upstream: tool-call events outermost, so every call is reported.
  const drain = createGatewayDrain();
  sessions.onEnded((id) => drain.forgetSession(id));
  const interceptors: Interceptor[] = [createToolCallEvents(events, clock), drain.interceptor];
  if (diagnostics !== undefined) interceptors.push(createDiagnosticsInterceptor(diagnostics, logger));
  // Innermost: times only what reaches the upstream.
  if (metrics !== undefined) interceptors.push(metrics.upstreamTimer);
  const chain = answersInCallerScope(createInterceptorChain(interceptors));
  const timeouts = upstreamTimeouts(upstream);

  const stateless = createStatelessBridge({
    connector,
    chain,
    timeouts,
    events,
    clock,
    logger,
    idleMs: upstream?.kind === 'stdio' ? upstream.statelessIdleMs : 5 * 60_000,
    maxBodyBytes: config.server.maxBodyBytes,
  });
  const guard = createGuard({
    verifier: verification,
    revocations,
    isOwnToken,
    requiredScopes: config.auth.requiredScopes,
    allowedOrigins: config.server.allowedOrigins,
    events,
    limits: requestLimits(config, stores),
    tracing,
    logger,
  });
  // Revoked access ends what it still holds open, on every transport, wherever the revocation came from.
  revocations.onRevoked(() => {
    const isRevoked = (principal: Principal) =>
      isOwnToken(principal) && revocations.isRevoked(principal.claims);
    void registry.endRevoked(isRevoked);
    stateless.closeRevoked(isRevoked);
  });

  const endpoint = createStreamableHttpEndpoint({
    sessions,
    registry,
    connector,
    chain,
    stateless,
    maxBodyBytes: config.server.maxBodyBytes,
    timeouts,
    events,
    logger,
  });
  const sessionTouchIntervalMs = Math.min(60_000, Math.ceil(config.sessions.idleTimeoutMs / 4));
  const legacySse =
    config.legacySse.enabled && upstream !== undefined
      ? createLegacySseEndpoint({
          guard,
          sessions,
          registry,
          connector,
          chain,
          maxBodyBytes: config.server.maxBodyBytes,
          ssePath: config.legacySse.ssePath,
          messagesPath: config.legacySse.messagesPath,
          keepAliveMs: config.legacySse.keepAliveMs,
          maxQueuedBytes: config.legacySse.maxQueuedBytes,
          sessionTouchIntervalMs,
          timeouts,
          events,
          clock,
          logger,
        })
      : undefined;

  const renderContext = {
    resourceMetadataUrl: urls.resourceMetadataUrl,
    scope: config.auth.requiredScopes,
    logger,
  };
  const renderError = (error: unknown, requestId?: string) =>
    renderGuardedError(error, { ...renderContext, requestId });
  const clientAddress = createClientAddressResolver({
    trustedProxies: config.server.trustedProxies,
    forwardedHeader: config.server.forwardedHeader,
  });
  const upgradeAddress = upgradeClientAddress(clientAddress);
  const websocket =
    config.websocket.enabled && upstream !== undefined
      ? createWebSocketEndpoint({
          path: config.websocket.path,
          guard,
          clientAddress: upgradeAddress,
          sessions,
          registry,
          connector,
          chain,
          perUserLimiter: stores.rateLimiter({
            points: config.websocket.connectPerUserPerMinute,
            durationSeconds: 60,
            keyPrefix: 'ws-connect-user',
          }),
          perIpLimiter: stores.rateLimiter({
            points: config.websocket.connectPerIpPerMinute,
            durationSeconds: 60,
            keyPrefix: 'ws-connect-ip',
          }),
          helloTimeoutMs: config.websocket.helloTimeoutMs,
          maxMessageBytes: config.websocket.maxMessageBytes ?? config.server.maxBodyBytes,
          maxBufferedBytes: config.websocket.maxBufferedBytes,
          heartbeatIntervalMs: config.websocket.heartbeatIntervalMs,
          sessionTouchIntervalMs,
          timeouts,
          renderError: (error) => {
            metrics?.observeError(error);
            return renderError(error);
          },
          events,
          clock,
          logger,
        })
      : undefined;

  // The MCP sub-app: every route behind the guard, errors as the MCP endpoint renders them.
  const mcp = new Hono<GuardedEnv>();
  mcp.onError((error, c) => renderError(error, requestIdOf(c)));
  if (upstream !== undefined) {
    // The request's span first, so the guard's check is its child.
    if (tracing.enabled) {
      mcp.use(config.server.mcpPath, requestSpan(tracing, config.server.mcpPath));
      if (config.legacySse.enabled) {
        for (const path of [config.legacySse.ssePath, config.legacySse.messagesPath]) {
          mcp.use(path, requestSpan(tracing, path));
        }
      }
    }
    mcp.use(config.server.mcpPath, guard.middleware('streamable-http'));
    mcp.all(config.server.mcpPath, (c) =>
      endpoint.handle(c.req.raw, { principal: c.get('principal'), cacheHit: c.get('cacheHit') }),
    );
  }
  legacySse?.mount(mcp);

  const discovery = new Hono<GatehouseEnv>();
  // Discovery documents are public and carry no credentials: any origin may read them (browser-based
  // MCP clients such as the Inspector discover from the page).
  discovery.use(
    '/.well-known/*',
    cors({ origin: '*', allowMethods: ['GET', 'HEAD', 'OPTIONS'], maxAge: 600 }),
  );
  const metadata = protectedResourceMetadata({
    resource: urls.resource,
    authorizationServers: authorizationServers(config, urls),
    scopesSupported,
  });
  // RFC 9728 §3.1 path form, then the root form that older clients probe.
  discovery.get(protectedResourceMetadataPath(urls.resource), (c) => c.json(metadata));
  discovery.get('/.well-known/oauth-protected-resource', (c) => c.json(metadata));
  discovery.get('/.well-known/jwks.json', (c) =>
    c.json(keys.publicJwks(), 200, { 'cache-control': 'public, max-age=300' }),
  );

  // Metrics on the main port, unless `metrics.port` gives them one of their own.
  const scrape = metrics && metricsResponder(metrics, config.metrics.bearerToken);
  const metricsRoute = new Hono<GatehouseEnv>();
  if (scrape !== undefined && config.metrics.port === undefined) {
    metricsRoute.all(config.metrics.path, (c) => scrape(c.req.method, c.req.header('authorization')));
  }

  // The operator's verbs, once; the admin API and console are shells over them (`admin.enabled`).
  const admin = config.admin.enabled
    ? createAdminService({
        stores,
        issuer: urls.issuer,
        accessTokenTtlSeconds: config.authorizationServer.accessTokenTtlSeconds,
        clock,
        events,
        keys,
        // An upstream held here stops at once, also without a cluster bus.
        sessionEnded: (sessionId) => {
          const held = registry.get(sessionId);
          if (held === undefined) return;
          registry.remove(held);
          held.sessionEnded('ended_by_operator');
        },
      })
    : undefined;
  const adminApps = admin === undefined ? [] : adminSubApps(admin);
  function adminSubApps(service: AdminService): Hono<GatehouseEnv>[] {
    const adminVerifier = createLocalVerifier({
      keys,
      issuer: urls.issuer,
      audience: urls.adminResource,
      clockToleranceSeconds: config.auth.clockToleranceSeconds,
      clock,
      name: 'gatehouse-admin',
      refuseDevelopmentTokens: true,
    });
    const roles = createAdminRoleCheck({ users: stores.users, clock });
    const perMinute = (keyPrefix: string) =>
      stores.rateLimiter({ points: config.admin.requestsPerMinute, durationSeconds: 60, keyPrefix });
    const limits = { perAddress: perMinute('admin-address'), perCaller: perMinute('admin-caller') };
    const api = createAdminApi({
      service,
      verifyToken: (token) => adminVerifier.verify(token),
      revocations,
      roles,
      apiToken: config.admin.apiToken,
      resource: urls.adminResource,
      resourceMetadataUrl: urls.adminResourceMetadataUrl,
      authorizationServers: authorizationServer === undefined ? [] : [urls.issuer],
      limits,
      events,
      clock,
      logger,
    });
    if (authorizationServer === undefined) return [api];
    const adminConsole = createAdminConsole({
      service,
      sessions: authorizationServer.browserSessions,
      roles,
      codes: stores.codes,
      publicUrl: urls.publicUrl,
      resource: urls.adminResource,
      authorizationEndpoint: authorizationServer.urls.authorization,
      limits,
      events,
      clock,
      logger,
    });
    return [api, adminConsole];
  }

  // DNS rebinding: every route answers only to the names the gateway is published under. The health checks
  // are exempt (probes call them by IP; they reveal nothing), and so are metrics behind their own bearer
  // token (Prometheus scrapes by IP; a rebinding page cannot send the token).
  const hosts: HostCheck = {
    policy: createHostPolicy({ publicUrl: urls.publicUrl, allowedHosts: config.server.allowedHosts }),
    exempt: new Set([
      '/healthz',
      '/readyz',
      ...(scrape !== undefined && config.metrics.port === undefined && config.metrics.bearerToken
        ? [config.metrics.path]
        : []),
    ]),
    events,
    logger,
  };
  const app = createEdgeApp({
    clientAddress,
    logger,
    hosts,
    observe: metrics && ((path, status, error) => metrics.observeRequest(path, status, error)),
    apps: [
      discovery,
      metricsRoute,
      createHealthApp({ stores, upstream: upstreamProbe, clock, logger, draining: () => drain.draining }),
      ...adminApps,
      ...(upstream === undefined || config.server.mcpPath === '/'
        ? []
        : [
            createLandingApp({
              urls,
              authorizationServers: authorizationServers(config, urls),
              ownAuthorizationServer: authorizationServer !== undefined,
            }),
          ]),
      ...(authorizationServer === undefined
        ? []
        : [authorizationServer.endpoints, authorizationServer.pages]),
      mcp as unknown as Hono<GatehouseEnv>,
    ],
  });

  if (upstreamProbe !== undefined && upstream?.kind === 'http') {
    const health = await upstreamProbe.check();
    if (!health.ok) logger.warn({ reason: health.reason }, `upstream not reachable yet: ${health.detail}`);
  }

  let sweeper: { stop(): void } | undefined;
  let keyRefresher: NodeJS.Timeout | undefined;
  let metricsServer: Promise<MetricsServer | undefined> | undefined;
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
    events,
    revocations,
    guard,
    endpoint,
    legacySse,
    websocket:
      websocket &&
      withUpgradeScope(withUpgradeHostCheck(websocket, hosts, upgradeAddress, renderError), upgradeAddress),
    authorizationServer,
    credentials,
    upstreamProbe,
    admin,
    drain,
    audit,
    metrics,
    metricsServer: () => metricsServer ?? Promise.resolve(undefined),
    authenticate(request, clientAddress = UNKNOWN_ADDRESS) {
      return guard.admit({
        origin: request.headers.get('origin') ?? undefined,
        authorization: request.headers.get('authorization') ?? undefined,
        clientAddress,
        transport: 'library',
      });
    },
    renderError,
    start() {
      sweeper ??= startSweeper(sessions, config.sessions.sweepIntervalMs, logger, () => registry.reconcile());
      authorizationServer?.start();
      revocations.start(REVOCATION_POLL_MS);
      keyRefresher ??= setInterval(() => {
        keys.refresh().catch((error: unknown) => logger.error({ err: error }, 'signing-key refresh failed'));
      }, KEY_REFRESH_MS);
      keyRefresher.unref();
      audit?.start();
      if (scrape !== undefined && config.metrics.port !== undefined) {
        metricsServer ??= serveMetrics({
          respond: scrape,
          path: config.metrics.path,
          host: config.metrics.host,
          port: config.metrics.port,
          // A rebinding page reaches the port under a name of its own, never an address: scrapers that
          // use one (a pod IP) pass; names must be the gateway's. A token-protected port needs no check.
          ...(!config.metrics.bearerToken && {
            allowsHost: (host: string | undefined) => {
              if (host === undefined) return false;
              const name = hostnameOfHost(host);
              return (
                name !== undefined && (isIP(name.replace(/^\[|\]$/g, '')) !== 0 || hosts.policy.allows(host))
              );
            },
          }),
        }).catch((error: unknown) => {
          logger.error({ err: error, port: config.metrics.port }, 'metrics port could not be bound');
          return undefined;
        });
      } else if (scrape !== undefined && config.mode === 'production' && !config.metrics.bearerToken) {
        logger.warn(
          { path: config.metrics.path },
          'metrics are served on the main port without a bearer token: set metrics.bearerToken or metrics.port',
        );
      }
    },
    async close() {
      sweeper?.stop();
      sessions.close();
      if (keyRefresher !== undefined) clearInterval(keyRefresher);
      keys.close();
      revocations.stop();
      authorizationServer?.close();
      await endpoint.close();
      await legacySse?.close();
      await websocket?.close();
      await stateless.close();
      unsubscribeAudit();
      // What shutting down reported (sessions ended) is in the queue too: written before the store closes.
      unsubscribeAuditWriter?.();
      await audit?.close();
      unsubscribeMetrics?.();
      await (await metricsServer)?.close();
      if (deps.stores === undefined) await stores.close();
      // Last: what closing did is exported too.
      unsubscribeTracing();
      await tracing.shutdown();
    },
  };
}

/** The guard's request limits on the store's engine; a limit of 0 is off. */
function requestLimits(config: GatehouseConfig, stores: Stores): GuardLimits {
  const perMinute = (points: number, keyPrefix: string) =>
    points > 0 ? stores.rateLimiter({ points, durationSeconds: 60, keyPrefix }) : undefined;
  return {
    perAddress: perMinute(config.limits.requestsPerAddressPerMinute, 'requests-address'),
    perUser: perMinute(config.limits.requestsPerUserPerMinute, 'requests-user'),
    perClient: perMinute(config.limits.requestsPerClientPerMinute, 'requests-client'),
  };
}

function upstreamTimeouts(upstream: UpstreamConfig | undefined): UpstreamTimeouts {
  if (upstream === undefined) return { startMs: 0 };
  return upstream.kind === 'stdio'
    ? { startMs: upstream.startTimeoutMs }
    : { startMs: upstream.requestTimeoutMs, requestMs: upstream.requestTimeoutMs };
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

/** RFC 9728 `authorization_servers`: Gatehouse itself, or the issuers of the configured verifiers. */
function authorizationServers(config: GatehouseConfig, urls: GatewayUrls): string[] {
  if (config.authorizationServer.enabled) return [urls.issuer];
  const external = config.auth.verifiers.flatMap((verifier) =>
    verifier.issuer === undefined ? [] : [verifier.issuer],
  );
  return external.length > 0 ? [...new Set(external)] : [urls.issuer];
}
