import { isInitializeRequest, isJsonContentType, isLegacyRequest } from '@modelcontextprotocol/server';
import { SessionRelay } from '../bridge/session-relay.js';
import type { StatelessBridge } from '../bridge/stateless.js';
import type { UpstreamConnector } from '../bridge/upstream.js';
import type { Diagnostics } from '../diagnostics/tools.js';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { jsonRpcError } from '../errors/render.js';
import { authenticate, type BearerVerifier } from '../guard/bearer.js';
import type { Principal } from '../identity/principal.js';
import type { Logger } from '../ops/logger.js';
import type { SessionManager } from '../sessions/manager.js';
import type { SessionRecord } from '../stores/ports.js';
import { JsonRpcParseError, readJsonBody } from './body.js';

export interface StreamableHttpOptions {
  readonly verifier: BearerVerifier;
  readonly requiredScopes: readonly string[];
  readonly isOriginAllowed: (origin: string | undefined) => boolean;
  readonly sessions: SessionManager;
  readonly connector: UpstreamConnector;
  readonly stateless: StatelessBridge;
  readonly maxBodyBytes: number;
  readonly startTimeoutMs: number;
  readonly logger: Logger;
  /** The `gatehouse_*` diagnostics tools, when enabled (both eras). */
  readonly diagnostics?: Diagnostics | undefined;
}

export interface StreamableHttpEndpoint {
  /** Serves the MCP endpoint; throws `OAuthError`/`GatehouseError` for the error boundary to render. */
  handle(request: Request): Promise<Response>;
  /** Relays currently held in memory (one per live session served by this instance). */
  liveRelays(): number;
  close(): Promise<void>;
}

const SESSION_HEADER = 'mcp-session-id';

/**
 * The MCP Streamable HTTP endpoint for both protocol eras. Every request is authenticated on its own; a
 * session id only selects state, and only for the user who created it.
 */
export function createStreamableHttpEndpoint(options: StreamableHttpOptions): StreamableHttpEndpoint {
  const { sessions, logger } = options;
  const relays = new Map<string, SessionRelay>();

  sessions.onEnded((id, reason) => {
    const relay = relays.get(id);
    relays.delete(id);
    if (relay !== undefined) {
      logger.debug({ sessionId: id, reason }, 'closing session relay');
      void relay.close();
    }
  });

  function relayFor(record: SessionRecord, principal: Principal): SessionRelay {
    let relay = relays.get(record.id);
    if (relay === undefined) {
      const initialize = record.data.initialize;
      relay = new SessionRelay({
        sessionId: record.id,
        identity: { principal, sessionId: record.id },
        connector: options.connector,
        logger,
        initializeParams: isRecord(initialize) ? initialize : undefined,
        startTimeoutMs: options.startTimeoutMs,
        diagnostics: options.diagnostics,
      });
      relays.set(record.id, relay);
    } else {
      relay.refreshPrincipal(principal);
    }
    return relay;
  }

  async function post(request: Request, principal: Principal, cacheHit: boolean): Promise<Response> {
    if (!isJsonContentType(request.headers.get('content-type'))) {
      throw new GatehouseError('ERR_UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json');
    }
    let body: unknown;
    try {
      body = await readJsonBody(request, options.maxBodyBytes);
    } catch (error) {
      if (error instanceof JsonRpcParseError) return jsonRpcError(400, -32700, error.message);
      throw error;
    }
    if (!(await isLegacyRequest(request, body)))
      return options.stateless.handle(request, body, principal, { cacheHit });

    const sessionId = request.headers.get(SESSION_HEADER);
    if (isInitializeRequest(body)) {
      if (sessionId !== null) {
        throw new GatehouseError('ERR_BAD_REQUEST', 'initialize must not carry an Mcp-Session-Id header');
      }
      const record = await sessions.open(principal, 'streamable-http', { initialize: body.params });
      const relay = relayFor(record, principal);
      try {
        return withSessionId(await relay.handle(request, body, { cacheHit }), record.id);
      } catch (error) {
        await sessions.end(record.id, principal).catch(() => undefined);
        throw error;
      }
    }
    if (sessionId === null) {
      throw new GatehouseError(
        'ERR_SESSION_REQUIRED',
        'Mcp-Session-Id header is required (send initialize first)',
      );
    }
    const record = await resumeOwn(sessionId, principal);
    return withSessionId(await relayFor(record, principal).handle(request, body, { cacheHit }), record.id);
  }

  /**
   * The session, only if it is this user's and a Streamable HTTP one: a WebSocket or legacy SSE session
   * id is as unknown here as any other, so no session gets a second upstream through another transport.
   */
  async function resumeOwn(sessionId: string, principal: Principal): Promise<SessionRecord> {
    const record = await sessions.resume(sessionId, principal);
    if (record.kind !== 'streamable-http')
      throw new GatehouseError('ERR_SESSION_NOT_FOUND', 'Session not found');
    return record;
  }

  return {
    async handle(request) {
      if (!options.isOriginAllowed(request.headers.get('origin') ?? undefined)) {
        throw new GatehouseError('ERR_ORIGIN_FORBIDDEN', 'Origin not allowed');
      }
      const method = request.method;
      if (method !== 'POST' && method !== 'GET' && method !== 'DELETE') {
        return methodNotAllowed();
      }
      const { principal, cacheHit } = await authenticate(
        request.headers.get('authorization') ?? undefined,
        options.verifier,
        options.requiredScopes,
      );
      if (method === 'POST') return post(request, principal, cacheHit);

      // GET and DELETE exist only for 2025-era sessions; without a session they are the stateless
      // revision's 405 (which a 2025 client also reads as "no standalone stream here").
      const sessionId = request.headers.get(SESSION_HEADER);
      if (sessionId === null) return methodNotAllowed();
      const record = await resumeOwn(sessionId, principal);
      if (method === 'DELETE') {
        await sessions.end(record.id, principal);
        return new Response(null, { status: 200 });
      }
      return withSessionId(await relayFor(record, principal).handle(request, undefined), record.id);
    },
    liveRelays: () => relays.size,
    async close() {
      const open = [...relays.values()];
      relays.clear();
      await Promise.all(open.map((relay) => relay.close()));
    },
  };
}

function methodNotAllowed(): Response {
  const response = jsonRpcError(405, -32000, 'Method not allowed.');
  response.headers.set('allow', 'POST, GET, DELETE');
  return response;
}

function withSessionId(response: Response, sessionId: string): Response {
  const headers = new Headers(response.headers);
  headers.set(SESSION_HEADER, sessionId);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
