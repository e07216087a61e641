import {
  isJSONRPCErrorResponse,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  isJsonContentType,
  type JSONRPCMessage,
  parseJSONRPCMessage,
  type RequestId,
  type Transport,
} from '@modelcontextprotocol/server';
import type { Hono } from 'hono';
import { UPSTREAM_CLOSED_CODE } from '../bridge/session-relay.js';
import {
  closeUpstream,
  credentialsExpireAt,
  credentialsExpired,
  type UpstreamConnector,
  type UpstreamIdentity,
} from '../bridge/upstream.js';
import { createDiagnosticsInterceptor, type DiagnosticsInterceptor } from '../diagnostics/interceptor.js';
import type { Diagnostics } from '../diagnostics/tools.js';
import { GatehouseError, isGatehouseError } from '../errors/gatehouse-error.js';
import { jsonRpcError } from '../errors/render.js';
import { type Authenticated, authenticate, type BearerVerifier } from '../guard/bearer.js';
import { type Principal, principalKey } from '../identity/principal.js';
import { type Clock, runAt } from '../ops/clock.js';
import type { Logger } from '../ops/logger.js';
import type { SessionManager } from '../sessions/manager.js';
import { JsonRpcParseError, readJsonBody } from './body.js';
import { createSseStream, type SseStream } from './sse-stream.js';

export interface LegacySseOptions {
  readonly verifier: BearerVerifier;
  readonly requiredScopes: readonly string[];
  readonly isOriginAllowed: (origin: string | undefined) => boolean;
  readonly sessions: SessionManager;
  readonly connector: UpstreamConnector;
  readonly maxBodyBytes: number;
  /** Path of the event stream (`GET`), e.g. `/sse`. */
  readonly ssePath: string;
  /** Path the client posts messages to, announced in the `endpoint` event, e.g. `/messages`. */
  readonly messagesPath: string;
  /** Interval between keep-alive comments on an open stream, in milliseconds. */
  readonly keepAliveMs: number;
  /**
   * How often an open stream records activity on its session, in milliseconds (under the idle timeout):
   * a connected stream is a live session, as a WebSocket connection is.
   */
  readonly sessionTouchIntervalMs: number;
  /** Unread bytes one stream may hold before it is closed as too slow. */
  readonly maxQueuedBytes: number;
  /** How long an upstream may take to start. */
  readonly startTimeoutMs: number;
  /** The clock brokered credentials expire by. */
  readonly clock: Clock;
  /** The `gatehouse_*` tools, when diagnostics are enabled: listed with the upstream's and answered here. */
  readonly diagnostics?: Diagnostics | undefined;
  readonly logger: Logger;
}

export interface LegacySseEndpoint {
  /** `GET <ssePath>`: opens a session, its own upstream, and the event stream that carries both. */
  handleStream(request: Request): Promise<Response>;
  /** `POST <messagesPath>?sessionId=…`: one client message for the session's upstream; 202 when forwarded. */
  handleMessage(request: Request): Promise<Response>;
  /** Routes both paths on `app`. */
  mount(app: Hono): void;
  /** Open streams on this instance and the bytes they hold unread (what slow readers cost). */
  stats(): { streams: number; queuedBytes: number };
  /** Closes every stream and upstream and ends their sessions. */
  close(): Promise<void>;
}

/** Why a legacy stream ended; logged. */
type EndReason =
  | 'client closed'
  | 'session ended'
  | 'upstream exited'
  | 'credentials expired'
  | 'slow reader'
  | 'shutdown';

interface LiveStream {
  readonly sessionId: string;
  readonly sse: SseStream;
  readonly upstream: Transport;
  readonly identity: UpstreamIdentity;
  principal: Principal;
  /** Client requests the upstream has not answered yet, failed with a JSON-RPC error if it exits. */
  readonly pending: Set<RequestId>;
  readonly diagnostics: DiagnosticsInterceptor | undefined;
  keepAlive: NodeJS.Timeout | undefined;
  touch: NodeJS.Timeout | undefined;
  /** Cancels the timer that ends the stream when the upstream's brokered credentials expire. */
  cancelCredentialsExpiry: (() => void) | undefined;
  over: boolean;
}

/**
 * The 2024-11-05 HTTP+SSE transport: `GET /sse` opens the stream, whose first event names the URL
 * (`/messages?sessionId=…`) the client posts its messages to; every answer travels on the stream.
 *
 * Both requests carry a bearer token, checked exactly as on the MCP endpoint (Origin, verification,
 * revocation, scopes, the same 401 challenge). The stream is a Gatehouse session of kind `legacy-sse`:
 * bound to the user who opened it (a POST with another user's token gets the 404 an unknown id gets),
 * counted against `sessions.maxPerUser`, with its own upstream connection (a stdio child per stream),
 * kept alive while the stream is connected and ended when it closes (and the other way round).
 * Messages are relayed verbatim. The stream lives in this process: behind several instances, route a
 * session's POSTs to the instance holding its stream (sticky sessions).
 */
export function createLegacySseEndpoint(options: LegacySseOptions): LegacySseEndpoint {
  const { sessions, logger } = options;
  const streams = new Map<string, LiveStream>();

  sessions.onEnded((id) => {
    const stream = streams.get(id);
    if (stream !== undefined) void finish(stream, 'session ended');
  });

  async function guard(request: Request, method: 'GET' | 'POST'): Promise<Authenticated | Response> {
    if (!options.isOriginAllowed(request.headers.get('origin') ?? undefined)) {
      throw new GatehouseError('ERR_ORIGIN_FORBIDDEN', 'Origin not allowed');
    }
    if (request.method !== method) {
      const response = jsonRpcError(405, -32000, 'Method not allowed.');
      response.headers.set('allow', method);
      return response;
    }
    return authenticate(
      request.headers.get('authorization') ?? undefined,
      options.verifier,
      options.requiredScopes,
    );
  }

  async function handleStream(request: Request): Promise<Response> {
    const authenticated = await guard(request, 'GET');
    if (authenticated instanceof Response) return authenticated;
    const { principal } = authenticated;
    const record = await sessions.open(principal, 'legacy-sse', {});
    const sessionId = record.id;

    let stream: LiveStream | undefined;
    const identity: UpstreamIdentity = {
      // Read at use: POSTs refresh it with newer tokens of the same user (HTTP upstreams mint from it).
      get principal() {
        return stream?.principal ?? principal;
      },
      sessionId,
    };
    const upstream = options.connector.open(identity);
    try {
      await withTimeout(upstream.start(), options.startTimeoutMs);
    } catch (error) {
      await upstream.close().catch(() => undefined);
      await sessions.end(sessionId, principal).catch(() => undefined);
      throw new GatehouseError('ERR_UPSTREAM_UNAVAILABLE', 'the upstream MCP server could not be started', {
        cause: error,
      });
    }

    const sse = createSseStream({
      maxQueuedBytes: options.maxQueuedBytes,
      onCancel: () => {
        if (stream !== undefined) void finish(stream, 'client closed');
      },
    });
    const live: LiveStream = {
      sessionId,
      sse,
      upstream,
      identity,
      principal,
      pending: new Set(),
      diagnostics:
        options.diagnostics === undefined
          ? undefined
          : createDiagnosticsInterceptor(options.diagnostics, logger),
      keepAlive: undefined,
      touch: undefined,
      cancelCredentialsExpiry: undefined,
      over: false,
    };
    stream = live;
    streams.set(sessionId, live);

    upstream.onmessage = (message) => fromUpstream(live, message);
    upstream.onerror = (error) => logger.warn({ err: error, sessionId }, 'upstream transport error');
    upstream.onclose = () => {
      if (!live.over) void finish(live, 'upstream exited');
    };
    // 2024-11-05: the first event is `endpoint`, whose data is the URI for POSTs (here an absolute path).
    sse.event('endpoint', `${options.messagesPath}?sessionId=${encodeURIComponent(sessionId)}`);
    live.keepAlive = setInterval(() => {
      if (!sse.comment('keep-alive')) void finish(live, 'slow reader');
    }, options.keepAliveMs);
    live.keepAlive.unref();
    live.touch = setInterval(() => {
      sessions.resume(sessionId, live.principal).catch((error: unknown) => {
        // Ended where this instance did not hear of it (another instance's sweeper or DELETE).
        if (isGatehouseError(error, 'ERR_SESSION_NOT_FOUND')) void finish(live, 'session ended');
        else logger.warn({ err: error, sessionId }, 'could not record legacy SSE stream activity');
      });
    }, options.sessionTouchIntervalMs);
    live.touch.unref();
    // The upstream never runs on expired credentials: the stream (and session) end with them.
    const credentialsAt = credentialsExpireAt(upstream);
    if (credentialsAt !== undefined) {
      live.cancelCredentialsExpiry = runAt(
        credentialsAt,
        options.clock,
        () => void finish(live, 'credentials expired'),
      );
    }
    logger.info({ sessionId, user: principal.subject }, 'legacy SSE stream opened');

    return new Response(sse.body, {
      status: 200,
      headers: {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache, no-transform',
        // Proxies such as nginx would otherwise hold events back.
        'x-accel-buffering': 'no',
      },
    });
  }

  async function handleMessage(request: Request): Promise<Response> {
    const authenticated = await guard(request, 'POST');
    if (authenticated instanceof Response) return authenticated;
    const { principal, cacheHit } = authenticated;
    const sessionId = new URL(request.url).searchParams.get('sessionId');
    if (sessionId === null || sessionId === '') {
      throw new GatehouseError('ERR_SESSION_REQUIRED', 'the sessionId query parameter is required');
    }
    // Ownership first: another user's session id gets exactly the answer an unknown one does, before
    // anything of the request is read or forwarded.
    const record = await sessions.resume(sessionId, principal);
    const stream = streams.get(record.id);
    if (stream === undefined || stream.over) {
      // The session is not a legacy stream held by this instance (a Streamable HTTP session id, or a
      // stream another instance holds): nothing here can deliver an answer to it.
      throw new GatehouseError('ERR_SESSION_NOT_FOUND', 'Session not found');
    }
    if (!isJsonContentType(request.headers.get('content-type'))) {
      throw new GatehouseError('ERR_UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json');
    }
    let message: JSONRPCMessage;
    try {
      message = parseJSONRPCMessage(await readJsonBody(request, options.maxBodyBytes));
    } catch (error) {
      if (error instanceof JsonRpcParseError) return jsonRpcError(400, -32700, error.message);
      if (error instanceof GatehouseError) throw error;
      return jsonRpcError(400, -32600, 'Invalid Request: not a JSON-RPC message');
    }
    if (principalKey(principal) === principalKey(stream.principal)) stream.principal = principal;
    if (credentialsExpired(stream.upstream)) {
      await finish(stream, 'credentials expired');
      throw new GatehouseError('ERR_SESSION_NOT_FOUND', 'Session not found');
    }
    const answered = stream.diagnostics?.fromClient(message, { principal, cacheHit, sessionId: record.id });
    if (answered !== undefined) {
      const answer = await answered;
      if (!stream.over && !stream.sse.event('message', JSON.stringify(answer)))
        void finish(stream, 'slow reader');
      return new Response('Accepted', { status: 202, headers: { 'content-type': 'text/plain' } });
    }
    if (isJSONRPCRequest(message)) stream.pending.add(message.id);
    try {
      await stream.upstream.send(message);
    } catch (error) {
      if (isJSONRPCRequest(message)) stream.pending.delete(message.id);
      throw new GatehouseError('ERR_UPSTREAM_UNAVAILABLE', 'the upstream MCP server is unavailable', {
        cause: error,
      });
    }
    return new Response('Accepted', { status: 202, headers: { 'content-type': 'text/plain' } });
  }

  function fromUpstream(stream: LiveStream, message: JSONRPCMessage): void {
    if (stream.over) return;
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      if (message.id !== undefined) stream.pending.delete(message.id);
    }
    const shown = stream.diagnostics?.fromUpstream(message) ?? message;
    if (!stream.sse.event('message', JSON.stringify(shown))) void finish(stream, 'slow reader');
  }

  async function finish(stream: LiveStream, reason: EndReason): Promise<void> {
    if (stream.over) return;
    stream.over = true;
    streams.delete(stream.sessionId);
    clearInterval(stream.keepAlive);
    clearInterval(stream.touch);
    stream.cancelCredentialsExpiry?.();
    const { sessionId, sse, upstream } = stream;
    const fields = { sessionId, user: stream.principal.subject, reason };
    if (reason === 'slow reader') {
      logger.warn(
        { ...fields, maxQueuedBytes: options.maxQueuedBytes },
        'legacy SSE client reads too slowly; stream closed',
      );
      sse.abort(new Error('the client fell too far behind'));
    } else if (reason === 'client closed') {
      logger.info(fields, 'legacy SSE stream closed by the client');
    } else {
      if (reason === 'upstream exited') {
        logger.warn(
          { ...fields, pending: stream.pending.size },
          'upstream MCP server exited; legacy SSE stream closed',
        );
      } else {
        logger.info(fields, 'legacy SSE stream closed');
      }
      // Requests still waiting get an answer rather than hang until the client's timeout.
      const why =
        reason === 'upstream exited'
          ? 'the upstream MCP server exited before answering'
          : reason === 'credentials expired'
            ? 'the upstream credentials expired; open a new stream'
            : reason;
      for (const id of stream.pending) {
        sse.event(
          'message',
          JSON.stringify({ jsonrpc: '2.0', id, error: { code: UPSTREAM_CLOSED_CODE, message: why } }),
        );
      }
      sse.close();
    }
    stream.pending.clear();
    upstream.onclose = undefined;
    upstream.onmessage = undefined;
    await closeUpstream(upstream, logger);
    if (reason !== 'session ended') {
      await sessions.end(sessionId, stream.principal).catch((error: unknown) => {
        // Already gone (expired in the same instant) is fine; anything else is worth knowing.
        if (!isGatehouseError(error, 'ERR_SESSION_NOT_FOUND')) {
          logger.error({ err: error, sessionId }, 'could not end legacy SSE session');
        }
      });
    }
  }

  return {
    handleStream,
    handleMessage,
    mount(app) {
      app.all(options.ssePath, (c) => handleStream(c.req.raw));
      app.all(options.messagesPath, (c) => handleMessage(c.req.raw));
    },
    stats() {
      let queuedBytes = 0;
      for (const stream of streams.values()) queuedBytes += stream.sse.queuedBytes();
      return { streams: streams.size, queuedBytes };
    },
    async close() {
      await Promise.all([...streams.values()].map((stream) => finish(stream, 'shutdown')));
    },
  };
}

async function withTimeout(promise: Promise<void>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`upstream did not start within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
