import { isJsonContentType, type JSONRPCMessage, parseJSONRPCMessage } from '@modelcontextprotocol/server';
import type { Hono } from 'hono';
import type { UpstreamTimeouts } from '../bridge/connection.js';
import type { InterceptorChain } from '../bridge/interceptors.js';
import { type LiveEndCause, LiveSession } from '../bridge/live-session.js';
import type { LiveRegistry } from '../bridge/registry.js';
import type { UpstreamConnector } from '../bridge/upstream.js';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { jsonRpcError } from '../errors/render.js';
import type { Guard, GuardedEnv } from '../guard/guard.js';
import { principalKey } from '../identity/principal.js';
import { JsonRpcParseError, readJsonBody } from '../net/body.js';
import { createSseStream, type SseStream } from '../net/sse-stream.js';
import type { Clock } from '../ops/clock.js';
import type { EventBus } from '../ops/events.js';
import type { Logger } from '../ops/logger.js';
import type { SessionManager } from '../sessions/manager.js';
import type { Admitted } from './streamable-http.js';

export interface LegacySseOptions {
  readonly guard: Guard;
  readonly sessions: SessionManager;
  readonly registry: LiveRegistry;
  readonly connector: UpstreamConnector;
  readonly chain: InterceptorChain;
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
  /** How long the upstream may take to start, and one relayed request to be answered. */
  readonly timeouts: UpstreamTimeouts;
  readonly events: EventBus;
  /** The clock brokered credentials expire by. */
  readonly clock: Clock;
  readonly logger: Logger;
}

export interface LegacySseEndpoint {
  /** `GET <ssePath>`: opens a session, its own upstream, and the event stream that carries both. */
  handleStream(request: Request, admitted: Admitted): Promise<Response>;
  /** `POST <messagesPath>?sessionId=…`: one client message for the session's upstream; 202 when forwarded. */
  handleMessage(request: Request, admitted: Admitted): Promise<Response>;
  /** Routes both paths on `app`, behind the guard. */
  mount(app: Hono<GuardedEnv>): void;
  /** Open streams on this instance and the bytes they hold unread (what slow readers cost). */
  stats(): { streams: number; queuedBytes: number };
  /** Closes every stream and upstream and ends their sessions. */
  close(): Promise<void>;
}

interface Stream {
  readonly live: LiveSession;
  readonly sse: SseStream;
  keepAlive: NodeJS.Timeout | undefined;
  touch: NodeJS.Timeout | undefined;
  over: boolean;
}

/**
 * The 2024-11-05 HTTP+SSE transport: `GET /sse` opens the stream, whose first event names the URL
 * (`/messages?sessionId=…`) the client posts its messages to; every answer travels on the stream.
 *
 * Both requests pass the same guard as the MCP endpoint (Origin, verification, revocation, scopes, the
 * same 401 challenge). The stream is a Gatehouse session of kind `legacy-sse`: bound to the user who
 * opened it (a POST with another user's token gets the 404 an unknown id gets), counted against
 * `sessions.maxPerUser`, with its own upstream connection (a stdio child per stream), kept alive while
 * the stream is connected and ended when it closes (and the other way round). Messages are relayed
 * verbatim. The stream lives in this process: behind several instances, route a session's POSTs to the
 * instance holding its stream (sticky sessions).
 */
export function createLegacySseEndpoint(options: LegacySseOptions): LegacySseEndpoint {
  const { sessions, logger } = options;
  const streams = new Map<string, Stream>();

  /** Ends a stream: its SSE body, timers, session and upstream, once. */
  function finish(stream: Stream, why: 'client closed' | 'slow reader' | 'shutdown' | LiveEndCause): void {
    if (stream.over) return;
    // Requests still waiting get an answer on the stream rather than hang until the client's timeout
    // (an upstream that exited has answered them already).
    if (why === 'shutdown' || (typeof why !== 'string' && why.kind === 'session_ended')) {
      stream.live.failWaiting('session ended');
    } else if (typeof why !== 'string' && why.kind === 'credentials_expired') {
      stream.live.failWaiting('the upstream credentials expired; open a new stream');
    }
    stream.over = true;
    streams.delete(stream.live.sessionId);
    clearInterval(stream.keepAlive);
    clearInterval(stream.touch);
    const { live, sse } = stream;
    const fields = { sessionId: live.sessionId, user: live.principal.subject };
    if (why === 'slow reader') {
      logger.warn(
        { ...fields, maxQueuedBytes: options.maxQueuedBytes },
        'legacy SSE client reads too slowly; stream closed',
      );
      sse.abort(new Error('the client fell too far behind'));
    } else if (why === 'client closed') {
      logger.info(fields, 'legacy SSE stream closed by the client');
    } else {
      logger.info(
        { ...fields, reason: typeof why === 'string' ? why : why.kind },
        'legacy SSE stream closed',
      );
      sse.close();
    }
    void live.release(why === 'shutdown' ? 'shutdown' : 'deleted');
  }

  async function handleStream(request: Request, admitted: Admitted): Promise<Response> {
    if (request.method !== 'GET') return methodNotAllowed('GET');
    const { principal } = admitted;
    let stream: Stream | undefined;
    const live = await LiveSession.open(
      principal,
      {},
      {
        sessions,
        registry: options.registry,
        kind: 'legacy-sse',
        connector: options.connector,
        chain: options.chain,
        timeouts: options.timeouts,
        touchIntervalMs: options.sessionTouchIntervalMs,
        events: options.events,
        clock: options.clock,
        logger,
        deliver: (message) => {
          if (stream !== undefined && !stream.over && !stream.sse.event('message', JSON.stringify(message))) {
            finish(stream, 'slow reader');
          }
        },
        onEnd: (cause) => {
          if (stream !== undefined) finish(stream, cause);
        },
      },
    );
    try {
      await live.connect();
    } catch (error) {
      await live.release('upstream_failed');
      throw error;
    }

    const sse = createSseStream({
      maxQueuedBytes: options.maxQueuedBytes,
      onCancel: () => {
        if (stream !== undefined) finish(stream, 'client closed');
      },
    });
    const current: Stream = { live, sse, keepAlive: undefined, touch: undefined, over: false };
    stream = current;
    streams.set(live.sessionId, current);
    // 2024-11-05: the first event is `endpoint`, whose data is the URI for POSTs (here an absolute path).
    sse.event('endpoint', `${options.messagesPath}?sessionId=${encodeURIComponent(live.sessionId)}`);
    current.keepAlive = setInterval(() => {
      if (!sse.comment('keep-alive')) finish(current, 'slow reader');
    }, options.keepAliveMs);
    current.keepAlive.unref();
    current.touch = setInterval(() => live.touch(), options.sessionTouchIntervalMs);
    current.touch.unref();
    if (live.isOver) finish(current, 'shutdown');
    logger.debug({ sessionId: live.sessionId, user: principal.subject }, 'legacy SSE stream opened');

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

  async function handleMessage(request: Request, admitted: Admitted): Promise<Response> {
    if (request.method !== 'POST') return methodNotAllowed('POST');
    const { principal, cacheHit } = admitted;
    const sessionId = new URL(request.url).searchParams.get('sessionId');
    if (sessionId === null || sessionId === '') {
      throw new GatehouseError('ERR_SESSION_REQUIRED', 'the sessionId query parameter is required');
    }
    // Ownership first: another user's session id gets exactly the answer an unknown one does, before
    // anything of the request is read or forwarded.
    const record = await sessions.resume(sessionId, principal, { establish: true });
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
    if (principalKey(principal) === principalKey(stream.live.principal)) stream.live.principal = principal;
    if (!(await stream.live.send(message, cacheHit))) {
      throw new GatehouseError('ERR_SESSION_NOT_FOUND', 'Session not found');
    }
    return new Response('Accepted', { status: 202, headers: { 'content-type': 'text/plain' } });
  }

  const admittedOf = (c: {
    get(key: 'principal'): GuardedEnv['Variables']['principal'];
    get(key: 'cacheHit'): boolean;
  }): Admitted => ({
    principal: c.get('principal'),
    cacheHit: c.get('cacheHit'),
  });

  return {
    handleStream,
    handleMessage,
    mount(app) {
      for (const path of [options.ssePath, options.messagesPath])
        app.use(path, options.guard.middleware('legacy-sse'));
      app.all(options.ssePath, (c) => handleStream(c.req.raw, admittedOf(c)));
      app.all(options.messagesPath, (c) => handleMessage(c.req.raw, admittedOf(c)));
    },
    stats() {
      let queuedBytes = 0;
      for (const stream of streams.values()) queuedBytes += stream.sse.queuedBytes();
      return { streams: streams.size, queuedBytes };
    },
    async close() {
      const open = [...streams.values()];
      for (const stream of open) finish(stream, 'shutdown');
      await Promise.all(open.map((stream) => stream.live.release('shutdown')));
    },
  };
}

function methodNotAllowed(allow: string): Response {
  const response = jsonRpcError(405, -32000, 'Method not allowed.');
  response.headers.set('allow', allow);
  return response;
}
