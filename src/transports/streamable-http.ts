import {
  isInitializeRequest,
  isJSONRPCRequest,
  isJsonContentType,
  isLegacyRequest,
} from '@modelcontextprotocol/server';
import type { UpstreamTimeouts } from '../bridge/connection.js';
import type { InterceptorChain } from '../bridge/interceptors.js';
import type { LiveRegistry } from '../bridge/registry.js';
import { SessionRelay } from '../bridge/session-relay.js';
import type { StatelessBridge } from '../bridge/stateless.js';
import type { UpstreamConnector } from '../bridge/upstream.js';
import { GatehouseError, isGatehouseError } from '../errors/gatehouse-error.js';
import { jsonRpcError } from '../errors/render.js';
import { type Principal, principalKey } from '../identity/principal.js';
import { JsonRpcParseError, readJsonBody } from '../net/body.js';
import type { EventBus } from '../ops/events.js';
import type { Logger } from '../ops/logger.js';
import type { SessionManager } from '../sessions/manager.js';
import type { SessionRecord } from '../stores/ports.js';

export interface StreamableHttpOptions {
  readonly sessions: SessionManager;
  readonly registry: LiveRegistry;
  readonly connector: UpstreamConnector;
  readonly chain: InterceptorChain;
  readonly stateless: StatelessBridge;
  readonly maxBodyBytes: number;

  /** How long the upstream may take to start, and one relayed request to be answered. */

  readonly timeouts: UpstreamTimeouts;
  readonly events: EventBus;
  readonly logger: Logger;
}

/** A request the guard admitted: who is calling, and whether the cache verified the token. */
export interface Admitted {
  readonly principal: Principal;
  readonly cacheHit: boolean;
}

export interface StreamableHttpEndpoint {
  /**
   * Serves the MCP endpoint for a request the guard admitted; throws `GatehouseError` for the error
   * boundary to render.
   */
  handle(request: Request, admitted: Admitted): Promise<Response>;
  /** Relays currently held in memory (one per live session served by this instance). */
  liveRelays(): number;
  close(): Promise<void>;
}

const SESSION_HEADER = 'mcp-session-id';

/**
 * The MCP Streamable HTTP endpoint for both protocol eras. Every request is authenticated on its own (by
 * the guard, before this runs); a session id only selects state, and only for the user who created it.
 */
export function createStreamableHttpEndpoint(options: StreamableHttpOptions): StreamableHttpEndpoint {
  const { sessions, registry, logger } = options;
  const relays = new Map<string, SessionRelay>();

  function forget(relay: SessionRelay): void {
    if (relays.get(relay.sessionId) === relay) relays.delete(relay.sessionId);
    registry.remove(relay);
  }

  function relayFor(record: SessionRecord, principal: Principal): SessionRelay {
    let relay = relays.get(record.id);
    if (relay === undefined) {
      const initialize = record.data.initialize;
      relay = new SessionRelay({
        sessionId: record.id,
        principal,
        connector: options.connector,
        chain: options.chain,
        events: options.events,
        logger,
        initializeParams: isRecord(initialize) ? initialize : undefined,
        timeouts: options.timeouts,
        onEnded: forget,
      });
      relays.set(record.id, relay);
      registry.add(relay);
    } else if (principalKey(relay.principal) === principalKey(principal)) {
      relay.principal = principal;
    }
    return relay;
  }

  async function initialize(request: Request, body: unknown, admitted: Admitted): Promise<Response> {
    if (!isJSONRPCRequest(body)) throw new GatehouseError('ERR_BAD_REQUEST', 'not an initialize request');
    const { principal } = admitted;
    const record = await sessions.open(principal, 'streamable-http', { initialize: body.params ?? {} });
    const relay = relayFor(record, principal);
    let established = false;
    try {
      const outcome = await relay.initialize(request, body, admitted);
      established = outcome.established;
      // An upstream that refused `initialize` has answered; the client is told no session exists.
      return established ? withSessionId(outcome.response, record.id) : outcome.response;
    } finally {
      if (!established) {
        forget(relay);
        await sessions.end(record.id, principal, 'upstream_failed').catch(() => undefined);
        await relay.close();
      }
    }
  }

  async function post(request: Request, admitted: Admitted): Promise<Response> {
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
    if (!(await isLegacyRequest(request, body))) {
      return options.stateless.handle(request, body, admitted.principal, { cacheHit: admitted.cacheHit });
    }

    const sessionId = request.headers.get(SESSION_HEADER);
    if (isInitializeRequest(body)) {
      if (sessionId !== null) {
        throw new GatehouseError('ERR_BAD_REQUEST', 'initialize must not carry an Mcp-Session-Id header');
      }
      return initialize(request, body, admitted);
    }
    if (sessionId === null) {
      throw new GatehouseError(
        'ERR_SESSION_REQUIRED',
        'Mcp-Session-Id header is required (send initialize first)',
      );
    }
    // A request after `initialize` means the client is really using the session: from now on it gets the
    // full idle timeout instead of the short one of a session nobody came back to.
    const record = await resumeOwn(sessionId, admitted.principal, carriesRequest(body));
    const relay = relayFor(record, admitted.principal);
    return withSessionId(await relay.handle(request, body, admitted), record.id);
  }

  /**
   * The session, only if it is this user's and a Streamable HTTP one: a WebSocket or legacy SSE session
   * id is as unknown here as any other, so no session gets a second upstream through another transport.
   * A relay held here for a session that is gone (ended by another process) is released.
   */
  async function resumeOwn(
    sessionId: string,
    principal: Principal,
    establish: boolean,
  ): Promise<SessionRecord> {
    let record: SessionRecord;
    try {
      record = await sessions.resume(sessionId, principal, { establish });
    } catch (error) {
      const stale = relays.get(sessionId);
      if (
        stale !== undefined &&
        isGatehouseError(error, 'ERR_SESSION_NOT_FOUND') &&
        principalKey(stale.principal) === principalKey(principal)
      ) {
        forget(stale);
        void stale.close();
      }
      throw error;
    }
    if (record.kind !== 'streamable-http')
      throw new GatehouseError('ERR_SESSION_NOT_FOUND', 'Session not found');
    return record;
  }

  return {
    async handle(request, admitted) {
      const method = request.method;
      if (method === 'POST') return post(request, admitted);
      if (method !== 'GET' && method !== 'DELETE') return methodNotAllowed();
      // GET and DELETE exist only for 2025-era sessions; without a session they are the stateless
      // revision's 405 (which a 2025 client also reads as "no standalone stream here").
      const sessionId = request.headers.get(SESSION_HEADER);
      if (sessionId === null) return methodNotAllowed();
      const record = await resumeOwn(sessionId, admitted.principal, false);
      if (method === 'DELETE') {
        await sessions.end(record.id, admitted.principal, 'deleted');
        return new Response(null, { status: 200 });
      }
      return withSessionId(await relayFor(record, admitted.principal).handle(request, undefined), record.id);
    },
    liveRelays: () => relays.size,
    async close() {
      const open = [...relays.values()];
      relays.clear();
      for (const relay of open) registry.remove(relay);
      await Promise.all(open.map((relay) => relay.close()));
    },
  };
}

/** Whether a POST body carries a request (a batch may: 2025-03-26). */
function carriesRequest(body: unknown): boolean {
  return Array.isArray(body) ? body.some((message) => isJSONRPCRequest(message)) : isJSONRPCRequest(body);
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
