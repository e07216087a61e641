import type { MiddlewareHandler } from 'hono';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { OAuthError } from '../errors/oauth-error.js';
import { type Principal, principalKey } from '../identity/principal.js';
import { addressLimitKey } from '../net/client-address.js';
import { clientAddressOf, type GatehouseEnv } from '../net/request-context.js';
import type { EventBus } from '../ops/events.js';
import { spendPoint } from '../ops/limit.js';
import type { Logger } from '../ops/logger.js';
import { disabledTracing, type Tracing } from '../ops/tracing.js';
import type { RateLimiter } from '../stores/ports.js';
import type { RevocationList } from '../tokens/revocation.js';
import { type Authenticated, authenticate, type BearerVerifier } from './bearer.js';
import { createOriginPolicy } from './origin.js';

/** Where a request came in; named in `guard.refused` events. */
export type GuardTransport = 'streamable-http' | 'legacy-sse' | 'websocket' | 'library';

/** How a request reached the guard: the only facts it judges besides the token. */
export interface GuardRequest {
  readonly origin: string | undefined;
  readonly authorization: string | undefined;
  readonly clientAddress: string;
  readonly transport: GuardTransport;
}

export interface GuardOptions {
  /** Verifies bearer tokens (the verification cache: signature, issuer, audience, expiry, algorithm). */
  readonly verifier: BearerVerifier;
  /** Revoked tokens Gatehouse issued; absent when Gatehouse issues none (resource-server mode). */
  readonly revocations?: RevocationList | undefined;
  /** Whether a verified principal came from a token Gatehouse issued (only those can be revoked here). */
  readonly isOwnToken: (principal: Principal) => boolean;
  /** Scopes every request needs; a token lacking one gets 403 `insufficient_scope`. */
  readonly requiredScopes: readonly string[];
  /** Browser origins allowed besides loopback (requests without `Origin` are not from a browser). */
  readonly allowedOrigins: readonly string[];
  readonly events: EventBus;
  /** Request limits (`limits.*`), each shared by the instances on the store; absent ones are off. */
  readonly limits?: GuardLimits | undefined;
  /** Where the auth path (verifier, verification cache hit or miss) is logged, at debug level. */
  readonly logger?: Logger | undefined;
  /** One span per check (`guard admit`, `guard authenticate`), a child of the request's. Default: off. */
  readonly tracing?: Tracing | undefined;
}

/**
 * Admissions (HTTP requests, WebSocket and SSE connections) allowed per window. The address limit counts
 * before the token is checked, so a flood of bad tokens is turned away cheaply; the user and client limits
 * count once the token is verified.
 */
export interface GuardLimits {
  readonly perAddress?: RateLimiter | undefined;
  readonly perUser?: RateLimiter | undefined;
  /** Keyed by the token's OAuth client (`client_id`/`azp`); tokens without one are not counted. */
  readonly perClient?: RateLimiter | undefined;
}

/** What the guard middleware sets on the context. */
export interface GuardVariables {
  readonly principal: Principal;
  /** Whether the token's verification came from the cache (diagnostics). */
  readonly cacheHit: boolean;
}

export type GuardedEnv = GatehouseEnv & { Variables: GuardVariables };

/**
 * The resource server's one guard: Origin (DNS-rebinding defence, MCP transports spec), the bearer token
 * (RFC 6750 header only), the verification cache, the revocation set and the required scopes. The MCP
 * endpoint uses it as middleware; the WebSocket upgrade, legacy SSE and library mode call `admit` — the
 * same code, so all refuse alike. Every refusal is reported once, as a `guard.refused` event.
 */
export interface Guard {
  /** Checks Origin, then the token; throws `OAuthError` / `GatehouseError` for the renderer. */
  admit(request: GuardRequest): Promise<Authenticated>;
  /** The Origin check alone (a WebSocket upgrade without a token, which authenticates later). */
  checkOrigin(request: Pick<GuardRequest, 'origin' | 'clientAddress' | 'transport'>): void;
  /** The token check alone, for a token that arrived another way (a WebSocket `hello`, each later message). */
  authenticate(
    token: string,
    request: Pick<GuardRequest, 'clientAddress' | 'transport'>,
  ): Promise<Authenticated>;
  /** Hono middleware: `admit`s the request and sets `principal` and `cacheHit` on the context. */
  middleware(transport: GuardTransport): MiddlewareHandler<GuardedEnv>;
}

/**
 * `verifier`, with tokens Gatehouse issued refused once revoked. Revocation is checked after the
 * verification cache, so a cached verification never outlives a revocation; `sync` first picks up what
 * another process (the CLI, another instance) wrote to the store.
 */
export function withRevocation(
  verifier: BearerVerifier,
  revocations: RevocationList | undefined,
  isOwnToken: (principal: Principal) => boolean,
): BearerVerifier {
  if (revocations === undefined) return verifier;
  return {
    async verify(token) {
      const result = await verifier.verify(token);
      if (isOwnToken(result.principal)) {
        await revocations.sync();
        if (revocations.isRevoked(result.principal.claims)) {
          throw new OAuthError('invalid_token', { reason: 'token_revoked', description: 'token revoked' });
        }
      }
      return result;
    },
  };
}

export function createGuard(options: GuardOptions): Guard {
  const { verifier, revocations, events } = options;
  const isOriginAllowed = createOriginPolicy(options.allowedOrigins);
  const requiredScopes = [...options.requiredScopes];
  const tracing = options.tracing ?? disabledTracing;

  const checked = withRevocation(verifier, revocations, options.isOwnToken);

  function refused(error: unknown, request: Pick<GuardRequest, 'clientAddress' | 'transport'>): unknown {
    if (error instanceof OAuthError || error instanceof GatehouseError) {
      events.emit({
        type: 'guard.refused',
        error: error.code,
        ...(error instanceof OAuthError && error.reason !== undefined && { reason: error.reason }),
        status: error.status,
        ip: request.clientAddress,
        transport: request.transport,
      });
    }
    return error;
  }

  function checkOrigin(request: Pick<GuardRequest, 'origin' | 'clientAddress' | 'transport'>): void {
    if (!isOriginAllowed(request.origin)) {
      throw refused(new GatehouseError('ERR_ORIGIN_FORBIDDEN', 'Origin not allowed'), request);
    }
  }

  /** Spends one point of `limiter` for `key`; a refusal is reported and thrown as 429 with `Retry-After`. */
  async function spend(
    limiter: RateLimiter | undefined,
    limit: string,
    key: string | undefined,
    request: Pick<GuardRequest, 'clientAddress'>,
    principal?: Principal,
  ): Promise<void> {
    if (limiter === undefined || key === undefined) return;
    const caller = { ip: request.clientAddress, principal: principal && principalKey(principal) };
    const refusal = await spendPoint(limiter, {
      limit,
      key,
      caller,
      events,
      message: 'too many requests; retry later',
    });
    if (refusal !== undefined) throw refusal;
  }

  /** `check` in a `guard <step>` span naming the transport and, once known, the user (never the token). */
  function traced(
    step: string,
    transport: GuardTransport,
    check: () => Promise<Authenticated>,
  ): Promise<Authenticated> {
    if (!tracing.enabled) return check();
    return tracing.inSpan(
      `guard ${step}`,
      { attributes: { 'gatehouse.transport': transport } },
      async (span) => {
        const admitted = await check();
        span.setAttribute('enduser.id', admitted.principal.subject);
        return admitted;
      },
    );
  }

  function admit(request: GuardRequest): Promise<Authenticated> {
    if (!tracing.enabled) return admitUntraced(request);
    return traced('admit', request.transport, () => admitUntraced(request));
  }

  function logVerified(admitted: Authenticated, transport: GuardTransport): void {
    options.logger?.debug(
      { verifier: admitted.principal.verifier, cache: admitted.cacheHit ? 'hit' : 'miss', transport },
      'token verified',
    );
  }

  async function admitUntraced(request: GuardRequest): Promise<Authenticated> {
    checkOrigin(request);
    const limits = options.limits;
    await spend(limits?.perAddress, 'requests-address', addressLimitKey(request.clientAddress), request);
    let admitted: Authenticated;
    try {
      admitted = await authenticate(request.authorization, checked, requiredScopes);
    } catch (error) {
      throw refused(error, request);
    }
    const { principal } = admitted;
    logVerified(admitted, request.transport);
    await spend(limits?.perUser, 'requests-user', principalKey(principal), request, principal);
    await spend(limits?.perClient, 'requests-client', principal.clientId, request, principal);
    return admitted;
  }

  return {
    admit,
    checkOrigin,
    authenticate(token, request) {
      return traced('authenticate', request.transport, async () => {
        try {
          const admitted = await authenticate(`Bearer ${token}`, checked, requiredScopes);
          logVerified(admitted, request.transport);
          return admitted;
        } catch (error) {
          throw refused(error, request);
        }
      });
    },
    middleware(transport) {
      return async (c, next) => {
        const { principal, cacheHit } = await admit({
          origin: c.req.header('origin'),
          authorization: c.req.header('authorization'),
          clientAddress: clientAddressOf(c),
          transport,
        });
        c.set('principal', principal);
        c.set('cacheHit', cacheHit);
        await next();
      };
    },
  };
}
