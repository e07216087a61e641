import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { type JSONRPCMessage, parseJSONRPCMessage } from '@modelcontextprotocol/server';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import type { UpstreamTimeouts } from '../bridge/connection.js';
import type { InterceptorChain } from '../bridge/interceptors.js';
import { type LiveEndCause, LiveSession, type LiveSessionOptions } from '../bridge/live-session.js';
import type { LiveRegistry } from '../bridge/registry.js';
import type { UpstreamConnector } from '../bridge/upstream.js';
import { upstreamFailureReason } from '../bridge/upstream-failure.js';
import { GatehouseError, isGatehouseError } from '../errors/gatehouse-error.js';
import { OAuthError } from '../errors/oauth-error.js';
import type { Guard } from '../guard/guard.js';
import { type Principal, principalKey } from '../identity/principal.js';
import { JsonRpcParseError, parseJsonText } from '../net/body.js';
import { addressLimitKey } from '../net/client-address.js';
import { type Clock, runAt } from '../ops/clock.js';
import type { EventBus } from '../ops/events.js';
import { spendPoint } from '../ops/limit.js';
import type { Logger } from '../ops/logger.js';
import type { SessionManager } from '../sessions/manager.js';
import type { RateLimiter } from '../stores/ports.js';

/**
 * Close codes the WebSocket endpoint sends (RFC 6455 §7.4.2: 4000–4999 are private to the application),
 * each with a stable `reason` string (listed in the README) that clients may branch on.
 */
export const WS_CLOSE = {
  /** The gateway is shutting down (`going_away`). */
  goingAway: 1001,
  /** A client message exceeded `websocket.maxMessageBytes`; sent by `ws` before the message is buffered. */
  messageTooBig: 1009,
  /** Not JSON, nested too deep, not a JSON-RPC message, an unknown `op`, or a `hello` without a token. */
  malformed: 4400,
  /** No or bad authentication: a message before `hello`, an invalid, expired or revoked token. */
  unauthenticated: 4401,
  /** The token lacks a required scope (`insufficient_scope`). */
  forbidden: 4403,
  /** No `hello` within `websocket.helloTimeoutMs`. */
  helloTimeout: 4408,
  /** A re-authentication `hello` carried another user's token. */
  principalMismatch: 4409,
  /** The session ended under the connection (idle timeout, absolute lifetime, ended by its user). */
  sessionEnded: 4410,
  /**
   * The credentials the upstream was started with (credential broker, `downstream.supabase`) expired; the
   * upstream is stopped rather than run on them. Reconnect to get a fresh upstream with fresh ones.
   */
  credentialsExpired: 4411,
  /** Per-user connect rate limit or per-user session cap. */
  limited: 4429,
  /**
   * The upstream MCP server exited (`upstream_closed`), stopped reading (`upstream_stalled`), or could not
   * be started: then the reason is the stable upstream failure reason (`upstream_spawn_failed`, …).
   */
  upstreamFailed: 4500,
  /** A store, IdP or key set needed to authenticate is unavailable (fail closed). */
  unavailable: 4503,
  /** The client stopped reading: more than `websocket.maxBufferedBytes` would wait to be sent. */
  slowConsumer: 4507,
} as const;

export interface WebSocketEndpointOptions {
  /** Path that accepts upgrades; any other path is answered 404. */
  readonly path: string;
  /** The resource server's guard: Origin, bearer, revocation and scopes, as on the MCP endpoint. */
  readonly guard: Guard;
  /** The client's address of an upgrade request (the peer, or what a trusted proxy says). */
  readonly clientAddress: (request: IncomingMessage) => string;
  readonly sessions: SessionManager;
  readonly registry: LiveRegistry;
  readonly connector: UpstreamConnector;
  readonly chain: InterceptorChain;
  /** Connections a user may open; keyed `user:<issuer>#<sub>`. */
  readonly perUserLimiter: RateLimiter;
  /** Upgrade requests a client address may make; keyed `ip:<address>` (an IPv6 /64). */
  readonly perIpLimiter: RateLimiter;
  /** How long a connection without an `Authorization` header may wait before its `hello`, in milliseconds. */
  readonly helloTimeoutMs: number;
  /** Largest client message, in bytes. */
  readonly maxMessageBytes: number;
  /** Bytes held per connection and direction before the gateway closes (outbound) or stops reading (inbound). */
  readonly maxBufferedBytes: number;
  /** Interval between pings, in milliseconds; a peer silent for a whole interval is disconnected. */
  readonly heartbeatIntervalMs: number;
  /** A busy connection records activity on its session at most this often, in milliseconds. */
  readonly sessionTouchIntervalMs: number;
  /** How long the upstream may take to start, and one relayed request to be answered. */
  readonly timeouts: UpstreamTimeouts;
  /** Renders an error exactly as the MCP endpoint does (status, `WWW-Authenticate`, `Retry-After`). */
  readonly renderError: (error: unknown) => Response;
  readonly events: EventBus;
  readonly clock: Clock;
  readonly logger: Logger;
}

export interface WebSocketEndpointStats {
  /** Open connections, authenticated or still waiting for their `hello`. */
  readonly open: number;
  /**
   * Connections the gateway has closed (session ended, upstream stopped) whose peer has not yet completed
   * the close handshake; `ws` cuts them off after 30 s. They hold at most what was already buffered.
   */
  readonly closing: number;
  /** The most bytes that ever waited to be sent on one connection (its `bufferedAmount` after a send). */
  readonly peakBufferedBytes: number;
  /** The most client bytes that ever waited on one connection for the upstream to take them. */
  readonly peakQueuedBytes: number;
}

export interface WebSocketEndpoint {
  readonly path: string;
  /** Serves an HTTP `upgrade` event (Node's `server.on('upgrade', …)`); refusals are written as HTTP answers. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  stats(): WebSocketEndpointStats;
  /** Closes every connection with 1001 (terminating those that do not finish the close handshake promptly). */
  close(): Promise<void>;
}

interface Authenticated {
  readonly token: string;
  readonly live: LiveSession;
}

/** How long shutdown waits for peers to answer the close frame before cutting them off. */
const SHUTDOWN_GRACE_MS = 1_000;
const SUBPROTOCOL = 'mcp';
/** RFC 6455 §5.2: at most 14 bytes of frame header (server frames are unmasked: 10). */
const MAX_FRAME_HEADER_BYTES = 14;

/**
 * MCP over WebSocket: one JSON-RPC message per frame, relayed verbatim between the socket and an upstream
 * connection of its own. A connection is a session (kind `websocket`) bound to the principal that
 * authenticated it, by `Authorization: Bearer` on the upgrade or by a first `{"op":"hello","token":…}`
 * message; no other message is processed before that. Every later message is checked against the
 * connection's current token again (so a revoked token stops working at once), the token's `exp` closes
 * the socket unless a `hello` with a fresh token of the same user arrived, and nothing is shared between
 * connections: no request-id table, no de-duplication.
 *
 * @example
 * const endpoint = createWebSocketEndpoint({ path: '/ws', guard, sessions, connector, … });
 * server.on('upgrade', (request, socket, head) => endpoint.handleUpgrade(request, socket, head));
 */
export function createWebSocketEndpoint(options: WebSocketEndpointOptions): WebSocketEndpoint {
  const { guard, logger, events } = options;
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: options.maxMessageBytes,
    perMessageDeflate: false,
    // The SDK's WebSocket client transport asks for `mcp`; a client that asks for nothing gets nothing.
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  const connections = new Set<Connection>();
  let peakBufferedBytes = 0;
  let peakQueuedBytes = 0;
  let closed = false;

  const heartbeat = setInterval(() => {
    for (const connection of connections) connection.heartbeat();
  }, options.heartbeatIntervalMs);
  heartbeat.unref();

  /** Spends one point of `limiter`; a refusal is reported and answered with `Retry-After`. */
  function limit(
    limiter: RateLimiter,
    name: string,
    key: string,
    who: { ip: string; principal?: Principal },
  ): Promise<GatehouseError | undefined> {
    const caller = { ip: who.ip, principal: who.principal && principalKey(who.principal) };
    return spendPoint(limiter, {
      limit: name,
      key,
      caller,
      events,
      message: 'too many WebSocket connections; retry later',
    });
  }

  function liveOptions(connection: () => Connection): LiveSessionOptions {
    return {
      sessions: options.sessions,
      registry: options.registry,
      kind: 'websocket',
      connector: options.connector,
      chain: options.chain,
      timeouts: options.timeouts,
      touchIntervalMs: options.sessionTouchIntervalMs,
      events,
      clock: options.clock,
      logger,
      deliver: (message) => connection().toClient(message),
      onEnd: (cause) => connection().ended(cause),
    };
  }

  /**
   * Everything that can be refused before the upgrade is refused with an HTTP answer, as the MCP endpoint
   * would: 403 origin, 429 per address; with an `Authorization` header also 401/403 token, 429 per user and
   * session cap. Without the header the socket is upgraded and has `helloTimeoutMs` to authenticate.
   */
  async function upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    if (closed) return refuse(socket, new Response(null, { status: 503 }));
    const pathname = new URL(request.url ?? '/', 'http://gatehouse.invalid').pathname;
    if (pathname !== options.path) throw new GatehouseError('ERR_NOT_FOUND', 'Not found');
    const ip = options.clientAddress(request);
    guard.checkOrigin({ origin: headerOf(request, 'origin'), clientAddress: ip, transport: 'websocket' });
    const perIp = await limit(options.perIpLimiter, 'ws-connect-ip', `ip:${addressLimitKey(ip)}`, { ip });
    if (perIp !== undefined) throw perIp;

    let holder: Connection | undefined;
    let accepted: Authenticated | undefined;
    const authorization = headerOf(request, 'authorization');
    if (authorization !== undefined) {
      const { principal } = await guard.admit({
        origin: undefined,
        authorization,
        clientAddress: ip,
        transport: 'websocket',
      });
      const perUser = await limit(
        options.perUserLimiter,
        'ws-connect-user',
        `user:${principalKey(principal)}`,
        {
          ip,
          principal,
        },
      );
      if (perUser !== undefined) throw perUser;
      const live = await LiveSession.open(
        principal,
        { auth: 'header' },
        liveOptions(() => holder as Connection),
      );
      accepted = { token: authorization.trim().replace(/^Bearer +/i, ''), live };
    }

    let upgraded = false;
    if (accepted !== undefined) {
      const { live } = accepted;
      // A handshake that never completes (client gone, bad Sec-WebSocket-Key) must not leak the session.
      socket.once('close', () => {
        if (!upgraded) void live.release();
      });
    }
    if (closed || socket.destroyed) {
      if (accepted !== undefined) await accepted.live.release();
      if (!socket.destroyed) refuse(socket, new Response(null, { status: 503 }));
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      upgraded = true;
      holder = new Connection(ws, ip, accepted);
      connections.add(holder);
    });
  }

  class Connection {
    private live: LiveSession | undefined;
    private token: string | undefined;
    private closing = false;
    private alive = true;
    private inbound: Promise<void> = Promise.resolve();
    /** Bytes received from the client and not yet handed to the upstream transport. */
    private queuedBytes = 0;
    private readingPaused = false;
    /** Heartbeats seen while reading stayed paused: the upstream has taken nothing for that long. */
    private stalledBeats = 0;
    private helloTimer: NodeJS.Timeout | undefined;
    private cancelTokenExpiry: (() => void) | undefined;
    readonly closedEvent: Promise<void>;

    constructor(
      private readonly ws: WebSocket,
      private readonly ip: string,
      accepted: Authenticated | undefined,
    ) {
      ws.on('message', (data) => this.receive(data));
      ws.on('pong', () => {
        this.alive = true;
      });
      ws.on('error', (error) =>
        logger.debug({ err: error, sessionId: this.live?.sessionId }, 'WebSocket error'),
      );
      this.closedEvent = new Promise((resolve) => {
        ws.once('close', (code, reason) => {
          this.onClosed(code, reason.toString('utf8'));
          resolve();
        });
      });
      if (accepted === undefined) {
        this.helloTimer = setTimeout(
          () => this.closeWith(WS_CLOSE.helloTimeout, 'hello_timeout'),
          options.helloTimeoutMs,
        );
      } else {
        this.inbound = this.authenticated(accepted, 'header');
      }
    }

    private get principal(): Principal | undefined {
      return this.live?.principal;
    }

    heartbeat(): void {
      if (this.ws.readyState !== WebSocket.OPEN) return;
      // While the gateway itself is not reading (inbound backpressure) pongs cannot arrive; what is
      // judged is the upstream, which has not taken a byte for a whole interval.
      if (this.readingPaused) {
        if (++this.stalledBeats >= 2) {
          logger.warn(
            { sessionId: this.live?.sessionId },
            'upstream MCP server stopped reading; closing the WebSocket',
          );
          this.closeWith(WS_CLOSE.upstreamFailed, 'upstream_stalled');
        }
        return;
      }
      if (!this.alive) {
        logger.info(
          { sessionId: this.live?.sessionId, ip: this.ip },
          'WebSocket peer missed a ping; disconnecting',
        );
        this.ws.terminate();
        return;
      }
      this.alive = false;
      this.ws.ping();
      // A live connection is an active session, even when only the upstream talks (as an open SSE stream).
      this.live?.touch();
    }

    /** The live session ended by itself: say why, with the matching close code. */
    ended(cause: LiveEndCause): void {
      if (cause.kind === 'credentials_expired') {
        this.closeWith(WS_CLOSE.credentialsExpired, 'credentials_expired');
      } else if (cause.kind === 'upstream_exited') {
        logger.warn(
          { sessionId: this.live?.sessionId, user: this.principal?.subject },
          'upstream MCP server exited; closing the WebSocket',
        );
        this.closeWith(WS_CLOSE.upstreamFailed, 'upstream_closed');
      } else if (cause.reason === 'revoked') {
        this.closeWith(WS_CLOSE.unauthenticated, 'token_revoked');
      } else {
        logger.info(
          { sessionId: this.live?.sessionId, reason: cause.reason },
          'session ended under an open WebSocket',
        );
        this.closeWith(WS_CLOSE.sessionEnded, 'session_ended');
      }
    }

    /** Closes the socket and, at once, ends the session and stops the upstream (a peer that does not read
     * would otherwise hold both until the close handshake times out). */
    closeWith(code: number, reason: string): void {
      if (this.closing) return;
      this.closing = true;
      this.clearTimers();
      if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
        this.ws.close(code, reason);
      }
      // Read again, or the peer's answering close frame would never be seen.
      if (this.readingPaused) {
        this.readingPaused = false;
        this.ws.resume();
      }
      logger.info(
        { sessionId: this.live?.sessionId, user: this.principal?.subject, code, reason },
        'closing WebSocket',
      );
      void this.release();
    }

    get isClosing(): boolean {
      return this.closing;
    }

    terminate(): void {
      this.ws.terminate();
    }

    private receive(data: RawData): void {
      if (this.closing) return;
      this.alive = true;
      const bytes = toBuffer(data);
      this.hold(bytes.length);
      this.inbound = this.inbound.then(() => this.process(bytes));
    }

    /** Client messages wait here (in order) for authentication and the upstream; beyond the bound the
     * socket is not read until they drain, so TCP pushes back on the client. */
    private hold(size: number): void {
      this.queuedBytes += size;
      peakQueuedBytes = Math.max(peakQueuedBytes, this.queuedBytes);
      if (!this.readingPaused && this.queuedBytes > options.maxBufferedBytes) {
        this.readingPaused = true;
        this.ws.pause();
      }
    }

    private releaseHeld(size: number): void {
      this.queuedBytes -= size;
      if (this.readingPaused && !this.closing && this.queuedBytes <= options.maxBufferedBytes / 2) {
        this.readingPaused = false;
        this.stalledBeats = 0;
        this.ws.resume();
      }
    }

    private async process(bytes: Buffer): Promise<void> {
      let handedOff = false;
      try {
        if (this.closing) return;
        let parsed: unknown;
        try {
          parsed = parseJsonText(bytes.toString('utf8'));
        } catch (error) {
          if (error instanceof JsonRpcParseError)
            return this.closeWith(WS_CLOSE.malformed, 'malformed_message');
          throw error;
        }
        if (isRecord(parsed) && 'op' in parsed) {
          if (parsed.op !== 'hello') return this.closeWith(WS_CLOSE.malformed, 'unknown_op');
          if (typeof parsed.token !== 'string' || parsed.token === '') {
            return this.closeWith(WS_CLOSE.malformed, 'malformed_hello');
          }
          return this.live === undefined ? await this.hello(parsed.token) : await this.rehello(parsed.token);
        }
        const live = this.live;
        if (live === undefined || this.token === undefined) {
          return this.closeWith(WS_CLOSE.unauthenticated, 'authentication_required');
        }
        let message: JSONRPCMessage;
        try {
          message = parseJSONRPCMessage(parsed);
        } catch {
          return this.closeWith(WS_CLOSE.malformed, 'malformed_message');
        }
        // The connection's token is checked again for every message: revocation holds from the moment it
        // is recorded, as on the MCP endpoint.
        let cacheHit: boolean;
        try {
          ({ cacheHit } = await guard.authenticate(this.token, {
            clientAddress: this.ip,
            transport: 'websocket',
          }));
        } catch (error) {
          return this.refuseAuth(error);
        }
        if (this.closing) return;
        handedOff = true;
        // Not awaited: an HTTP upstream's send can last as long as the call, and a cancellation behind it
        // must not wait. The bytes stay counted until the transport has taken them.
        live
          .send(message, cacheHit)
          .catch((error: unknown) =>
            logger.warn({ err: error, sessionId: live.sessionId }, 'could not forward message upstream'),
          )
          .finally(() => this.releaseHeld(bytes.length));
      } catch (error) {
        logger.error({ err: error, sessionId: this.live?.sessionId }, 'WebSocket message handling failed');
        this.closeWith(WS_CLOSE.unavailable, 'temporarily_unavailable');
      } finally {
        if (!handedOff) this.releaseHeld(bytes.length);
      }
    }

    private async hello(token: string): Promise<void> {
      clearTimeout(this.helloTimer);
      let principal: Principal;
      try {
        ({ principal } = await guard.authenticate(token, { clientAddress: this.ip, transport: 'websocket' }));
      } catch (error) {
        return this.refuseAuth(error);
      }
      const perUser = await limit(
        options.perUserLimiter,
        'ws-connect-user',
        `user:${principalKey(principal)}`,
        {
          ip: this.ip,
          principal,
        },
      );
      if (perUser !== undefined) return this.closeWith(WS_CLOSE.limited, 'rate_limited');
      let live: LiveSession;
      try {
        live = await LiveSession.open(
          principal,
          { auth: 'hello' },
          liveOptions(() => this),
        );
      } catch (error) {
        if (isGatehouseError(error, 'ERR_SESSION_LIMIT'))
          return this.closeWith(WS_CLOSE.limited, 'session_limit');
        throw error;
      }
      if (this.closing) return void live.release();
      await this.authenticated({ token, live }, 'hello');
      this.acknowledge();
    }

    private async rehello(token: string): Promise<void> {
      const live = this.live as LiveSession;
      let principal: Principal;
      try {
        ({ principal } = await guard.authenticate(token, { clientAddress: this.ip, transport: 'websocket' }));
      } catch (error) {
        return this.refuseAuth(error);
      }
      if (principalKey(principal) !== principalKey(live.principal)) {
        logger.warn(
          { sessionId: live.sessionId, user: live.principal.subject, presented: principal.subject },
          'WebSocket re-authentication with another user’s token',
        );
        return this.closeWith(WS_CLOSE.principalMismatch, 'principal_mismatch');
      }
      live.principal = principal;
      this.token = token;
      this.scheduleTokenExpiry();
      logger.debug({ sessionId: live.sessionId, user: principal.subject }, 'WebSocket re-authenticated');
      this.acknowledge();
    }

    private acknowledge(): void {
      const live = this.live;
      if (this.closing || live === undefined) return;
      this.ws.send(
        JSON.stringify({
          op: 'hello_ack',
          sub: live.principal.subject,
          expires_at: live.principal.expiresAt,
          session_id: live.sessionId,
        }),
      );
    }

    private async authenticated(accepted: Authenticated, via: 'header' | 'hello'): Promise<void> {
      const { live } = accepted;
      this.live = live;
      this.token = accepted.token;
      this.scheduleTokenExpiry();
      logger.info(
        {
          sessionId: live.sessionId,
          user: live.principal.subject,
          verifier: live.principal.verifier,
          auth: via,
          ip: this.ip,
        },
        'WebSocket authenticated',
      );
      try {
        await live.connect();
      } catch (error) {
        this.closeWith(WS_CLOSE.upstreamFailed, upstreamFailureReason(error, true));
      }
    }

    toClient(message: JSONRPCMessage): void {
      if (this.closing || this.ws.readyState !== WebSocket.OPEN) return;
      const data = JSON.stringify(message);
      const waiting = this.ws.bufferedAmount;
      // The one place output can pile up: the socket's send buffer. Refusing to grow it past the bound
      // (instead of queueing elsewhere) is what keeps a client that does not read from costing memory.
      if (
        waiting > 0 &&
        waiting + Buffer.byteLength(data) + MAX_FRAME_HEADER_BYTES > options.maxBufferedBytes
      ) {
        logger.warn(
          { sessionId: this.live?.sessionId, user: this.principal?.subject, bufferedBytes: waiting },
          'WebSocket client is not reading; closing it',
        );
        this.closeWith(WS_CLOSE.slowConsumer, 'slow_consumer');
        return;
      }
      this.ws.send(data);
      peakBufferedBytes = Math.max(peakBufferedBytes, this.ws.bufferedAmount);
    }

    private refuseAuth(error: unknown): void {
      const [code, reason] = authFailure(error);
      if (code === WS_CLOSE.unavailable) {
        logger.error({ err: error, sessionId: this.live?.sessionId }, 'WebSocket authentication unavailable');
      }
      this.closeWith(code, reason);
    }

    /** Closes the connection when its token expires, unless a `hello` with a fresh one came first. */
    private scheduleTokenExpiry(): void {
      this.cancelTokenExpiry?.();
      const principal = this.principal;
      if (principal === undefined) return;
      this.cancelTokenExpiry = runAt(principal.expiresAt * 1000, options.clock, () => {
        if (this.principal === principal) this.closeWith(WS_CLOSE.unauthenticated, 'token_expired');
      });
    }

    private clearTimers(): void {
      clearTimeout(this.helloTimer);
      this.cancelTokenExpiry?.();
    }

    private onClosed(code: number, reason: string): void {
      this.closing = true;
      this.clearTimers();
      connections.delete(this);
      logger.info(
        { sessionId: this.live?.sessionId, user: this.principal?.subject, code, reason },
        'WebSocket closed',
      );
      void this.release();
    }

    /** Stops the upstream (the stdio child exits) and ends the session; once. */
    release(): Promise<void> {
      return this.live?.release() ?? Promise.resolve();
    }
  }

  return {
    path: options.path,
    handleUpgrade(request, socket, head) {
      // Until `ws` owns the socket, a reset from the client must not become an uncaught error.
      socket.on('error', (error) => logger.debug({ err: error }, 'WebSocket upgrade socket error'));
      upgrade(request, socket, head).catch((error: unknown) => {
        if (!socket.destroyed) refuse(socket, options.renderError(error));
      });
    },
    stats() {
      let closing = 0;
      for (const connection of connections) if (connection.isClosing) closing++;
      return { open: connections.size - closing, closing, peakBufferedBytes, peakQueuedBytes };
    },
    async close() {
      closed = true;
      clearInterval(heartbeat);
      const open = [...connections];
      for (const connection of open) connection.closeWith(WS_CLOSE.goingAway, 'going_away');
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(open.map((connection) => connection.closedEvent)),
        new Promise((resolve) => {
          grace = setTimeout(resolve, SHUTDOWN_GRACE_MS);
        }),
      ]);
      clearTimeout(grace);
      for (const connection of open) connection.terminate();
      await Promise.all(open.map((connection) => connection.release()));
      wss.close();
    },
  };
}

/** The close code and reason for a token refused by `authenticate`; fails closed on anything unexpected. */
function authFailure(error: unknown): [code: number, reason: string] {
  if (!(error instanceof OAuthError) || error.status >= 500)
    return [WS_CLOSE.unavailable, 'temporarily_unavailable'];
  if (error.code === 'insufficient_scope') return [WS_CLOSE.forbidden, 'insufficient_scope'];
  if (error.reason === 'token_expired' || error.reason === 'token_revoked') {
    return [WS_CLOSE.unauthenticated, error.reason];
  }
  return [WS_CLOSE.unauthenticated, 'invalid_token'];
}

/** Writes `response` as the HTTP answer to an upgrade request and closes the socket. */
export function refuse(socket: Duplex, response: Response): void {
  void response.arrayBuffer().then(
    (body) => {
      const lines = [`HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ''}`];
      response.headers.forEach((value, name) => {
        if (name !== 'content-length' && name !== 'connection') lines.push(`${name}: ${value}`);
      });
      lines.push('connection: close', `content-length: ${body.byteLength}`);
      socket.end(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), Buffer.from(body)]));
    },
    () => socket.destroy(),
  );
}

function headerOf(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
