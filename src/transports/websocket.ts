import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { type JSONRPCMessage, parseJSONRPCMessage, type Transport } from '@modelcontextprotocol/server';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
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
import { OAuthError } from '../errors/oauth-error.js';
import { authenticate, type BearerVerifier } from '../guard/bearer.js';
import { type Principal, principalKey } from '../identity/principal.js';
import { type Clock, MAX_TIMER_MS } from '../ops/clock.js';
import type { Logger } from '../ops/logger.js';
import type { RateLimiter } from '../ops/ratelimit.js';
import type { SessionManager } from '../sessions/manager.js';
import type { SessionRecord } from '../stores/ports.js';

/**
 * Close codes the WebSocket endpoint sends (RFC 6455 §7.4.2: 4000–4999 are private to the application),
 * each with a stable `reason` string (listed in the README) that clients may branch on.
 */
export const WS_CLOSE = {
  /** The gateway is shutting down (`going_away`). */
  goingAway: 1001,
  /** A client message exceeded `websocket.maxMessageBytes`; sent by `ws` before the message is buffered. */
  messageTooBig: 1009,
  /** Not JSON, not a JSON-RPC message, an unknown `op`, or a `hello` without a token. */
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
  /** The upstream MCP server could not be started or exited. */
  upstreamFailed: 4500,
  /** A store, IdP or key set needed to authenticate is unavailable (fail closed). */
  unavailable: 4503,
  /** The client stopped reading: more than `websocket.maxBufferedBytes` would wait to be sent. */
  slowConsumer: 4507,
} as const;

export interface WebSocketEndpointOptions {
  /** Path that accepts upgrades; any other path is answered 404. */
  readonly path: string;
  readonly verifier: BearerVerifier;
  readonly requiredScopes: readonly string[];
  readonly isOriginAllowed: (origin: string | undefined) => boolean;
  readonly sessions: SessionManager;
  readonly connector: UpstreamConnector;
  /** Connections a user may open; keyed `user:<issuer>#<sub>`. */
  readonly perUserLimiter: RateLimiter;
  /** Upgrade requests a client IP may make; keyed `ip:<address>`. */
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
  /** Renders an error exactly as the MCP endpoint does (status, `WWW-Authenticate`, `Retry-After`). */
  readonly renderError: (error: unknown) => Response;
  /** The `gatehouse_*` tools, when diagnostics are enabled: listed with the upstream's and answered here. */
  readonly diagnostics?: Diagnostics | undefined;
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
  readonly principal: Principal;
  readonly token: string;
  readonly session: SessionRecord;
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
 * const endpoint = createWebSocketEndpoint({ path: '/ws', verifier, sessions, connector, … });
 * server.on('upgrade', (request, socket, head) => endpoint.handleUpgrade(request, socket, head));
 */
export function createWebSocketEndpoint(options: WebSocketEndpointOptions): WebSocketEndpoint {
  const { sessions, logger } = options;
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: options.maxMessageBytes,
    perMessageDeflate: false,
    // The SDK's WebSocket client transport asks for `mcp`; a client that asks for nothing gets nothing.
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  const connections = new Set<Connection>();
  const bySession = new Map<string, Connection>();
  let peakBufferedBytes = 0;
  let peakQueuedBytes = 0;
  let closed = false;

  sessions.onEnded((id, reason) => {
    const connection = bySession.get(id);
    if (connection === undefined) return;
    logger.info({ sessionId: id, reason }, 'session ended under an open WebSocket');
    connection.closeWith(WS_CLOSE.sessionEnded, 'session_ended');
  });

  const heartbeat = setInterval(() => {
    for (const connection of connections) connection.heartbeat();
  }, options.heartbeatIntervalMs);
  heartbeat.unref();

  async function consume(limiter: RateLimiter, key: string) {
    try {
      return await limiter.consume(key);
    } catch (error) {
      throw new GatehouseError('ERR_STORE_UNAVAILABLE', 'rate limiter unavailable', { cause: error });
    }
  }

  function rateLimited(retryAfterSeconds: number): GatehouseError {
    return new GatehouseError('ERR_RATE_LIMITED', 'too many WebSocket connections; retry later', {
      retryAfterSeconds,
    });
  }

  async function endSession(session: SessionRecord, principal: Principal): Promise<void> {
    bySession.delete(session.id);
    try {
      await sessions.end(session.id, principal);
    } catch (error) {
      if (!isGatehouseError(error, 'ERR_SESSION_NOT_FOUND')) {
        logger.warn({ err: error, sessionId: session.id }, 'could not end WebSocket session');
      }
    }
  }

  /**
   * Everything that can be refused before the upgrade is refused with an HTTP answer, as the MCP endpoint
   * would: 403 origin, 429 per IP; with an `Authorization` header also 401/403 token, 429 per user and
   * session cap. Without the header the socket is upgraded and has `helloTimeoutMs` to authenticate.
   */
  async function upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    if (closed) return refuse(socket, new Response(null, { status: 503 }));
    const pathname = new URL(request.url ?? '/', 'http://gatehouse.invalid').pathname;
    if (pathname !== options.path) throw new GatehouseError('ERR_NOT_FOUND', 'Not found');
    if (!options.isOriginAllowed(headerOf(request, 'origin'))) {
      throw new GatehouseError('ERR_ORIGIN_FORBIDDEN', 'Origin not allowed');
    }
    const ip = request.socket.remoteAddress ?? 'unknown';
    const perIp = await consume(options.perIpLimiter, `ip:${ip}`);
    if (!perIp.allowed) throw rateLimited(perIp.retryAfterSeconds);

    let accepted: Authenticated | undefined;
    const authorization = headerOf(request, 'authorization');
    if (authorization !== undefined) {
      const { principal } = await authenticate(authorization, options.verifier, options.requiredScopes);
      const perUser = await consume(options.perUserLimiter, `user:${principalKey(principal)}`);
      if (!perUser.allowed) throw rateLimited(perUser.retryAfterSeconds);
      const session = await sessions.open(principal, 'websocket', { auth: 'header' });
      accepted = { principal, token: authorization.trim().replace(/^Bearer +/i, ''), session };
    }

    let upgraded = false;
    if (accepted !== undefined) {
      const { session, principal } = accepted;
      // A handshake that never completes (client gone, bad Sec-WebSocket-Key) must not leak the session.
      socket.once('close', () => {
        if (!upgraded) void endSession(session, principal);
      });
    }
    if (closed || socket.destroyed) {
      if (accepted !== undefined) await endSession(accepted.session, accepted.principal);
      if (!socket.destroyed) refuse(socket, new Response(null, { status: 503 }));
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      upgraded = true;
      const connection = new Connection(ws, ip, accepted);
      connections.add(connection);
    });
  }

  class Connection {
    private principal: Principal | undefined;
    private token: string | undefined;
    private session: SessionRecord | undefined;
    private upstream: Transport | undefined;
    private closing = false;
    private alive = true;
    private inbound: Promise<void> = Promise.resolve();
    /** Bytes received from the client and not yet handed to the upstream transport. */
    private queuedBytes = 0;
    private readingPaused = false;
    /** Heartbeats seen while reading stayed paused: the upstream has taken nothing for that long. */
    private stalledBeats = 0;
    private helloTimer: NodeJS.Timeout | undefined;
    private expiryTimer: NodeJS.Timeout | undefined;
    private readonly diagnostics: DiagnosticsInterceptor | undefined =
      options.diagnostics === undefined
        ? undefined
        : createDiagnosticsInterceptor(options.diagnostics, logger);
    private lastTouchAt = 0;
    private released: Promise<void> | undefined;
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
      ws.on('error', (error) => logger.debug({ err: error, sessionId: this.session?.id }, 'WebSocket error'));
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

    heartbeat(): void {
      if (this.ws.readyState !== WebSocket.OPEN) return;
      // While the gateway itself is not reading (inbound backpressure) pongs cannot arrive; what is
      // judged is the upstream, which has not taken a byte for a whole interval.
      if (this.readingPaused) {
        if (++this.stalledBeats >= 2) {
          logger.warn(
            { sessionId: this.session?.id },
            'upstream MCP server stopped reading; closing the WebSocket',
          );
          this.closeWith(WS_CLOSE.upstreamFailed, 'upstream_stalled');
        }
        return;
      }
      if (!this.alive) {
        logger.info(
          { sessionId: this.session?.id, ip: this.ip },
          'WebSocket peer missed a ping; disconnecting',
        );
        this.ws.terminate();
        return;
      }
      this.alive = false;
      this.ws.ping();
      // A live connection is an active session, even when only the upstream talks (as an open SSE stream).
      this.touch();
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
        { sessionId: this.session?.id, user: this.principal?.subject, code, reason },
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
          parsed = JSON.parse(bytes.toString('utf8'));
        } catch {
          return this.closeWith(WS_CLOSE.malformed, 'malformed_message');
        }
        if (isRecord(parsed) && 'op' in parsed) {
          if (parsed.op !== 'hello') return this.closeWith(WS_CLOSE.malformed, 'unknown_op');
          if (typeof parsed.token !== 'string' || parsed.token === '') {
            return this.closeWith(WS_CLOSE.malformed, 'malformed_hello');
          }
          return this.principal === undefined
            ? await this.hello(parsed.token)
            : await this.rehello(parsed.token);
        }
        if (this.principal === undefined || this.token === undefined) {
          return this.closeWith(WS_CLOSE.unauthenticated, 'authentication_required');
        }
        try {
          parseJSONRPCMessage(parsed);
        } catch {
          return this.closeWith(WS_CLOSE.malformed, 'malformed_message');
        }
        // The connection's token is checked again for every message: revocation holds from the moment it
        // is recorded, as on the MCP endpoint.
        let cacheHit: boolean;
        try {
          ({ cacheHit } = await options.verifier.verify(this.token));
        } catch (error) {
          return this.refuseAuth(error);
        }
        const upstream = this.upstream;
        if (this.closing || upstream === undefined) return;
        if (credentialsExpired(upstream))
          return this.closeWith(WS_CLOSE.credentialsExpired, 'credentials_expired');
        this.touch();
        const answered = this.diagnostics?.fromClient(parsed as JSONRPCMessage, {
          principal: this.principal,
          cacheHit,
          sessionId: this.session?.id,
        });
        if (answered !== undefined) {
          await answered.then((answer) => this.toClient(answer));
          return;
        }
        handedOff = true;
        // Not awaited: an HTTP upstream's send can last as long as the call, and a cancellation behind it
        // must not wait. The bytes stay counted until the transport has taken them.
        upstream
          .send(parsed as JSONRPCMessage)
          .catch((error: unknown) =>
            logger.warn({ err: error, sessionId: this.session?.id }, 'could not forward message upstream'),
          )
          .finally(() => this.releaseHeld(bytes.length));
      } catch (error) {
        logger.error({ err: error, sessionId: this.session?.id }, 'WebSocket message handling failed');
        this.closeWith(WS_CLOSE.unavailable, 'temporarily_unavailable');
      } finally {
        if (!handedOff) this.releaseHeld(bytes.length);
      }
    }

    private async hello(token: string): Promise<void> {
      clearTimeout(this.helloTimer);
      let principal: Principal;
      try {
        ({ principal } = await authenticate(`Bearer ${token}`, options.verifier, options.requiredScopes));
      } catch (error) {
        return this.refuseAuth(error);
      }
      const perUser = await consume(options.perUserLimiter, `user:${principalKey(principal)}`);
      if (!perUser.allowed) return this.closeWith(WS_CLOSE.limited, 'rate_limited');
      let session: SessionRecord;
      try {
        session = await sessions.open(principal, 'websocket', { auth: 'hello' });
      } catch (error) {
        if (isGatehouseError(error, 'ERR_SESSION_LIMIT'))
          return this.closeWith(WS_CLOSE.limited, 'session_limit');
        throw error;
      }
      if (this.closing) return endSession(session, principal);
      await this.authenticated({ principal, token, session }, 'hello');
      this.acknowledge();
    }

    private async rehello(token: string): Promise<void> {
      const current = this.principal as Principal;
      let principal: Principal;
      try {
        ({ principal } = await authenticate(`Bearer ${token}`, options.verifier, options.requiredScopes));
      } catch (error) {
        return this.refuseAuth(error);
      }
      if (principalKey(principal) !== principalKey(current)) {
        logger.warn(
          { sessionId: this.session?.id, user: current.subject, presented: principal.subject },
          'WebSocket re-authentication with another user’s token',
        );
        return this.closeWith(WS_CLOSE.principalMismatch, 'principal_mismatch');
      }
      this.principal = principal;
      this.token = token;
      this.scheduleExpiry();
      logger.debug({ sessionId: this.session?.id, user: principal.subject }, 'WebSocket re-authenticated');
      this.acknowledge();
    }

    private acknowledge(): void {
      if (this.closing || this.principal === undefined || this.session === undefined) return;
      this.ws.send(
        JSON.stringify({
          op: 'hello_ack',
          sub: this.principal.subject,
          expires_at: this.principal.expiresAt,
          session_id: this.session.id,
        }),
      );
    }

    private async authenticated(accepted: Authenticated, via: 'header' | 'hello'): Promise<void> {
      this.principal = accepted.principal;
      this.token = accepted.token;
      this.session = accepted.session;
      this.lastTouchAt = options.clock.now();
      bySession.set(accepted.session.id, this);
      this.scheduleExpiry();
      logger.info(
        {
          sessionId: accepted.session.id,
          user: accepted.principal.subject,
          verifier: accepted.principal.verifier,
          auth: via,
          ip: this.ip,
        },
        'WebSocket authenticated',
      );
      const connection = this;
      const identity: UpstreamIdentity = {
        get principal() {
          return connection.principal ?? accepted.principal;
        },
        sessionId: accepted.session.id,
      };
      try {
        const transport = options.connector.open(identity);
        this.upstream = transport;
        transport.onmessage = (message) => this.toClient(message);
        transport.onerror = (error) =>
          logger.warn({ err: error, sessionId: accepted.session.id }, 'upstream transport error');
        transport.onclose = () => {
          if (this.closing) return;
          logger.warn(
            { sessionId: accepted.session.id, user: accepted.principal.subject },
            'upstream MCP server exited; closing the WebSocket',
          );
          this.closeWith(WS_CLOSE.upstreamFailed, 'upstream_closed');
        };
        await transport.start();
        // The upstream's credentials are known now: their expiry ends the connection too.
        this.scheduleExpiry();
      } catch (error) {
        logger.error(
          { err: error, sessionId: accepted.session.id },
          'the upstream MCP server could not be started',
        );
        this.closeWith(WS_CLOSE.upstreamFailed, 'upstream_unavailable');
      }
    }

    private toClient(message: JSONRPCMessage): void {
      if (this.closing || this.ws.readyState !== WebSocket.OPEN) return;
      const data = JSON.stringify(this.diagnostics?.fromUpstream(message) ?? message);
      const waiting = this.ws.bufferedAmount;
      // The one place output can pile up: the socket's send buffer. Refusing to grow it past the bound
      // (instead of queueing elsewhere) is what keeps a client that does not read from costing memory.
      if (
        waiting > 0 &&
        waiting + Buffer.byteLength(data) + MAX_FRAME_HEADER_BYTES > options.maxBufferedBytes
      ) {
        logger.warn(
          { sessionId: this.session?.id, user: this.principal?.subject, bufferedBytes: waiting },
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
        logger.error({ err: error, sessionId: this.session?.id }, 'WebSocket authentication unavailable');
      } else {
        logger.info({ sessionId: this.session?.id, reason }, 'WebSocket token refused');
      }
      this.closeWith(code, reason);
    }

    /** Closes the connection when its token (4401) or the upstream's credentials (4411) expire. */
    private scheduleExpiry(): void {
      clearTimeout(this.expiryTimer);
      const principal = this.principal;
      if (principal === undefined) return;
      const credentialsAt = this.upstream === undefined ? undefined : credentialsExpireAt(this.upstream);
      const at = Math.min(principal.expiresAt * 1000, credentialsAt ?? Number.POSITIVE_INFINITY);
      this.expiryTimer = setTimeout(
        () => {
          const now = options.clock.now();
          if (credentialsAt !== undefined && credentialsAt <= now) {
            return this.closeWith(WS_CLOSE.credentialsExpired, 'credentials_expired');
          }
          if (principal.expiresAt * 1000 > now) return this.scheduleExpiry();
          this.closeWith(WS_CLOSE.unauthenticated, 'token_expired');
        },
        Math.min(Math.max(0, at - options.clock.now()), MAX_TIMER_MS),
      );
    }

    /**
     * Records activity on the session, at most every `sessionTouchIntervalMs`: on client messages and on
     * heartbeats the peer answered, so only a dead connection lets its session idle out.
     */
    private touch(): void {
      const { session, principal } = this;
      const now = options.clock.now();
      if (session === undefined || principal === undefined) return;
      if (now - this.lastTouchAt < options.sessionTouchIntervalMs) return;
      this.lastTouchAt = now;
      sessions.resume(session.id, principal).catch((error: unknown) => {
        if (isGatehouseError(error, 'ERR_SESSION_NOT_FOUND')) {
          this.closeWith(WS_CLOSE.sessionEnded, 'session_ended');
        } else {
          logger.warn({ err: error, sessionId: session.id }, 'could not record WebSocket session activity');
        }
      });
    }

    private clearTimers(): void {
      clearTimeout(this.helloTimer);
      clearTimeout(this.expiryTimer);
    }

    private onClosed(code: number, reason: string): void {
      this.closing = true;
      this.clearTimers();
      connections.delete(this);
      logger.info(
        { sessionId: this.session?.id, user: this.principal?.subject, code, reason },
        'WebSocket closed',
      );
      void this.release();
    }

    /** Stops the upstream (the stdio child exits) and ends the session; once. */
    release(): Promise<void> {
      if (this.released !== undefined) return this.released;
      const upstream = this.upstream;
      this.upstream = undefined;
      const { session, principal } = this;
      // Ending the session does not wait for the child to exit: the user's slot is free at once.
      this.released = Promise.all([
        session === undefined || principal === undefined ? undefined : endSession(session, principal),
        upstream === undefined ? undefined : stopUpstream(upstream),
      ]).then(() => undefined);
      return this.released;
    }
  }

  async function stopUpstream(upstream: Transport): Promise<void> {
    upstream.onclose = undefined;
    upstream.onmessage = undefined;
    await closeUpstream(upstream, logger);
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
function refuse(socket: Duplex, response: Response): void {
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
