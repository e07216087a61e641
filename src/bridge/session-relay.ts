import {
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type RequestId,
  WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server';
import { GatehouseError } from '../errors/gatehouse-error.js';
import type { Principal } from '../identity/principal.js';
import { createSseStream, type SseStream } from '../net/sse-stream.js';
import type { EventBus, SessionEndReason } from '../ops/events.js';
import type { Logger } from '../ops/logger.js';
import { UpstreamConnection, type UpstreamTimeouts } from './connection.js';
import {
  type EventFollower,
  type ExchangeEvents,
  type LoggedEvent,
  SessionEventLog,
  STANDALONE_STREAM,
} from './event-log.js';
import type { InterceptorChain } from './interceptors.js';
import type { LiveEntry } from './registry.js';
import type { UpstreamConnector, UpstreamIdentity } from './upstream.js';

export interface SessionRelayOptions {
  readonly sessionId: string;
  readonly principal: Principal;
  readonly connector: UpstreamConnector;
  readonly chain: InterceptorChain;
  readonly events: EventBus;
  readonly logger: Logger;
  /**
   * The client's original `initialize` parameters. When the relay must (re)start the upstream for a
   * session that is already initialized (after a gateway restart or an upstream crash), it replays them
   * so the new upstream is in the state the client believes it is in.
   */
  readonly initializeParams: Record<string, unknown> | undefined;
  /** How long the upstream may take to start, and one relayed request to be answered. */
  readonly timeouts: UpstreamTimeouts;
  /** Called once when the session ended under the relay (swept, evicted, revoked): forget it. */
  readonly onEnded: (relay: SessionRelay) => void;
}

/** How the request being relayed was authenticated. */
export interface RelayRequestAuth {
  readonly cacheHit: boolean;
}

/**
 * The `retry` (milliseconds) the client's streams carry until the upstream has asked for its own: the SDK
 * client's first reconnection delay.
 */
const DEFAULT_RETRY_MS = 1000;

/** One client HTTP exchange: its SDK transport, and the events its client can resume from. */
interface Exchange {
  readonly transport: WebStandardStreamableHTTPServerTransport;
  readonly events: ExchangeEvents;
}

/** The answer to a session's first `initialize`, and whether the upstream accepted it. */
export interface InitializeOutcome {
  readonly response: Response;
  /** False when the upstream answered `initialize` with an error: the session must not live on. */
  readonly established: boolean;
}

/**
 * Relays one 2025-era MCP session between the client and its own upstream connection.
 *
 * Messages are forwarded verbatim in both directions (unknown methods included), so the client and
 * upstream negotiate the protocol themselves. HTTP framing on the client side (Accept and Content-Type
 * checks, SSE, batching, protocol-version header) is the SDK's `WebStandardStreamableHTTPServerTransport`,
 * used once per HTTP exchange; the session itself (its id, owner and lifetime) is Gatehouse's, which is
 * what lets a session outlive the process that created it. What this class adds to the one upstream
 * connection is routing: each answer and notification to the HTTP exchange it belongs to.
 */
export class SessionRelay implements LiveEntry {
  readonly sessionId: string;
  private connection: UpstreamConnection | undefined;
  private starting: Promise<UpstreamConnection> | undefined;
  /** Client request id → the HTTP exchange waiting for its response. */
  private readonly exchanges = new Map<RequestId, Exchange>();
  /** progressToken → client request id, so upstream progress reaches the stream of the request it is about. */
  private readonly progressTokens = new Map<string | number, RequestId>();
  /** Open GET streams; unsolicited upstream messages go to the newest. */
  private readonly standalone = new Set<WebStandardStreamableHTTPServerTransport>();
  /** What the session's streams sent, for clients that reconnect with `Last-Event-ID`. */
  private readonly events = new SessionEventLog();
  /** The `retry` new streams carry: the upstream's own once it asked for one. */
  private retryMs = DEFAULT_RETRY_MS;
  private closed = false;
  private current: Principal;
  private readonly identity: UpstreamIdentity;

  constructor(private readonly options: SessionRelayOptions) {
    this.sessionId = options.sessionId;
    this.current = options.principal;
    const relay = this;
    this.identity = {
      get principal() {
        return relay.current;
      },
      sessionId: options.sessionId,
    };
  }

  get principal(): Principal {
    return this.current;
  }

  /** Adopts a newer verification of the session's user (same issuer and subject, checked by the caller). */
  set principal(principal: Principal) {
    this.current = principal;
  }

  /**
   * Serves the session's first `initialize`: the upstream is started and must answer before the client is
   * told the session exists. A failure throws the upstream's error (502/504 with `data.reason`).
   */
  async initialize(
    request: Request,
    body: JSONRPCRequest,
    auth: RelayRequestAuth,
  ): Promise<InitializeOutcome> {
    const connection = await this.ensureConnection(false);
    const answer = await connection.exchange(body, { principal: this.current, cacheHit: auth.cacheHit });
    const exchange = new WebStandardStreamableHTTPServerTransport({});
    exchange.onmessage = (message) => {
      if (isJSONRPCRequest(message) && message.id === body.id) this.send(exchange, answer, undefined);
    };
    await exchange.start();
    const response = await exchange.handleRequest(request, { parsedBody: body });
    return { response, established: !isJSONRPCErrorResponse(answer) };
  }

  /** Serves one later POST or GET of this session; `parsedBody` is the already-validated JSON body of a POST. */
  async handle(
    request: Request,
    parsedBody: unknown,
    auth: RelayRequestAuth = { cacheHit: false },
  ): Promise<Response> {
    if (this.closed) throw new GatehouseError('ERR_SESSION_NOT_FOUND', 'Session not found');
    const standalone = request.method === 'GET';
    const lastEventId = standalone ? request.headers.get('last-event-id') : null;
    if (lastEventId !== null) return this.resume(request, lastEventId);
    const connection = await this.ensureConnection(true);
    const events = this.events.forExchange(standalone);
    const transport = new WebStandardStreamableHTTPServerTransport({
      eventStore: events,
      retryInterval: this.retryMs,
    });
    const exchange: Exchange = { transport, events };
    const principal = this.current;
    transport.onmessage = (message) =>
      this.fromClient(message, exchange, connection, principal, auth.cacheHit);
    await transport.start();
    if (standalone) {
      this.standalone.add(transport);
      request.signal.addEventListener('abort', () => this.standalone.delete(transport), { once: true });
    } else {
      request.signal.addEventListener('abort', () => this.forgetExchange(exchange), { once: true });
    }
    return transport.handleRequest(request, { parsedBody });
  }

  /**
   * Serves a GET carrying `Last-Event-ID` (SEP-1699): what the client missed on that stream, then what
   * follows, until the stream's requests are answered (the standalone stream: until the client leaves).
   * The relay serves it itself: the SDK transport resumes only streams of its own instance, and the relay
   * has one per exchange. Only the session's owner gets here, and only this session's ids are known.
   */
  private resume(request: Request, lastEventId: string): Response {
    if (!request.headers.get('accept')?.includes('text/event-stream')) {
      throw new GatehouseError('ERR_NOT_ACCEPTABLE', 'Not Acceptable: Client must accept text/event-stream');
    }
    const stream = new ResumedStream();
    const outcome = this.events.resume(lastEventId, stream);
    if (typeof outcome === 'string') {
      throw new GatehouseError('ERR_BAD_REQUEST', 'This Last-Event-ID cannot be resumed', {
        details: { reason: outcome },
      });
    }
    stream.following(outcome);
    // The client has left the stream it resumes, whether or not its connection is known to be closed.
    const streamId = this.events.streamOf(lastEventId);
    if (streamId === STANDALONE_STREAM) {
      for (const standalone of this.standalone) void standalone.close();
      this.standalone.clear();
    }
    for (const [requestId, exchange] of this.exchanges) {
      if (exchange.events.streamId === streamId) exchange.transport.closeSSEStream(requestId);
    }
    return stream.response();
  }

  sessionEnded(_reason: SessionEndReason): void {
    this.options.onEnded(this);
    void this.close();
  }

  /** Stops the upstream and closes every open stream of this session. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.connection?.failPending('upstream_exited', 'session ended');
    for (const exchange of this.standalone) await exchange.close();
    this.standalone.clear();
    this.events.close();
    const connection = this.connection ?? (await this.starting?.catch(() => undefined));
    this.connection = undefined;
    await connection?.close();
  }

  private fromClient(
    message: JSONRPCMessage,
    exchange: Exchange,
    connection: UpstreamConnection,
    principal: Principal,
    cacheHit: boolean,
  ): void {
    if (isJSONRPCRequest(message)) {
      this.exchanges.set(message.id, exchange);
      exchange.events.expect(message.id);
      const token = message.params?._meta?.progressToken;
      if (token !== undefined) this.progressTokens.set(token, message.id);
    }
    void connection.fromClient(message, { principal, cacheHit });
  }

  private deliver(message: JSONRPCMessage, answering: RequestId | undefined): void {
    if (answering !== undefined) {
      const exchange = this.exchanges.get(answering);
      this.exchanges.delete(answering);
      for (const [token, requestId] of this.progressTokens) {
        if (requestId === answering) this.progressTokens.delete(token);
      }
      if (exchange === undefined) {
        this.options.logger.debug({ sessionId: this.sessionId }, 'dropped a response whose client is gone');
        return;
      }
      this.send(exchange.transport, message, undefined);
      return;
    }
    // Notifications and server-to-client requests belong to the request they are about (2025-11-25
    // transports: sent on that request's stream); without a way to tell, to the newest pending request,
    // and otherwise to the standalone GET stream.
    const related = this.relatedRequest(message);
    const exchange = related === undefined ? undefined : this.exchanges.get(related);
    if (exchange !== undefined) {
      this.send(exchange.transport, message, related);
      return;
    }
    const stream = [...this.standalone].at(-1);
    if (stream !== undefined) {
      this.send(stream, message, undefined);
      return;
    }
    // Kept for a client that resumes its standalone stream (live, if it already has).
    this.events.store(STANDALONE_STREAM, message);
  }

  private relatedRequest(message: JSONRPCMessage): RequestId | undefined {
    if (isJSONRPCNotification(message) && message.method === 'notifications/progress') {
      const token = message.params?.progressToken;
      if ((typeof token === 'string' || typeof token === 'number') && this.progressTokens.has(token)) {
        return this.progressTokens.get(token);
      }
    }
    return [...this.exchanges.keys()].at(-1);
  }

  private send(
    exchange: WebStandardStreamableHTTPServerTransport,
    message: JSONRPCMessage,
    relatedRequestId: RequestId | undefined,
  ): void {
    const options = relatedRequestId === undefined ? undefined : { relatedRequestId };
    exchange.send(message, options).catch((error: unknown) => {
      this.options.logger.debug(
        { err: error, sessionId: this.sessionId },
        'client stream gone; message dropped',
      );
    });
  }

  /**
   * The session's upstream, started when there is none. Brokered credentials are never used past their
   * expiry: a connection whose credentials expired is replaced by a fresh one (fresh credentials,
   * `initialize` replayed) before this request reaches it; requests still running on the old one fail as
   * on a crash.
   */
  private async ensureConnection(replayInitialize: boolean): Promise<UpstreamConnection> {
    const current = this.connection;
    if (current?.credentialsExpired()) {
      this.connection = undefined;
      current.failPending('upstream_exited', 'the upstream credentials expired; retry the request');
      await current.close();
      this.options.logger.info({ sessionId: this.sessionId }, 'credentials expired; restarting upstream');
    } else if (current !== undefined) {
      return current;
    }
    this.starting ??= this.startConnection(replayInitialize).finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async startConnection(replayInitialize: boolean): Promise<UpstreamConnection> {
    const { options } = this;
    let opened: UpstreamConnection | undefined;
    const connection = await UpstreamConnection.open(
      {
        connector: options.connector,
        identity: this.identity,
        chain: options.chain,
        transport: 'streamable-http',
        timeouts: options.timeouts,
        events: options.events,
        logger: options.logger,
        deliver: (message, answering) => this.deliver(message, answering),
        onStreamPaused: (requestId, retryMs) => this.streamPaused(requestId, retryMs),
        onExit: () => {
          if (opened !== undefined) this.upstreamExited(opened);
        },
      },
      replayInitialize ? options.initializeParams : undefined,
    );
    opened = connection;
    if (this.closed) {
      await connection.close();
      throw new GatehouseError('ERR_SESSION_NOT_FOUND', 'Session not found');
    }
    this.connection = connection;
    return connection;
  }

  /** The upstream crashed: pending requests were answered; the next request starts a fresh one. */
  private upstreamExited(connection: UpstreamConnection): void {
    if (this.connection !== connection) return;
    this.connection = undefined;
    for (const exchange of this.standalone) void exchange.close();
    this.standalone.clear();
    this.events.interrupt(STANDALONE_STREAM);
  }

  /**
   * The upstream paused a request's stream (SEP-1699 polling) and its transport resumes it: the client's
   * stream for that request ends too, so the client reconnects with `Last-Event-ID` and gets the answer
   * when it comes. Only a stream that opened with a priming event is ended (a 2025-11-25 client, which
   * expects this); an older client's stream stays open and gets the answer once the upstream gives it.
   */
  private streamPaused(requestId: RequestId, retryMs: number | undefined): void {
    if (retryMs !== undefined) this.retryMs = retryMs;
    const exchange = this.exchanges.get(requestId);
    const streamId = exchange?.events.streamId;
    if (exchange === undefined || streamId === undefined || !exchange.events.primed) return;
    exchange.transport.closeSSEStream(requestId);
    this.events.interrupt(streamId);
  }

  /** A client gone before its answers: its requests are forgotten, unless it can resume their stream. */
  private forgetExchange(exchange: Exchange): void {
    if (exchange.events.streamId !== undefined) return;
    for (const [id, owner] of this.exchanges) if (owner === exchange) this.exchanges.delete(id);
  }
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};
/** As the SDK's own streams: a comment now and then keeps proxies from cutting a quiet stream. */
const KEEP_ALIVE_MS = 15_000;

/**
 * Unread bytes a resumed stream may hold for a slow client (twice what a session's log keeps, so a full
 * replay fits); beyond it the stream ends and the client resumes again from the last event it read.
 */
const MAX_UNREAD_BYTES = 8 * 1024 * 1024;

/** The SSE body of a resumed stream, fed by the session's event log. */
export class ResumedStream implements EventFollower {
  private readonly sse: SseStream;
  private keepAlive: NodeJS.Timeout | undefined;
  private stop: (() => void) | undefined;
  private ended = false;

  constructor(maxUnreadBytes = MAX_UNREAD_BYTES) {
    this.sse = createSseStream({ maxQueuedBytes: maxUnreadBytes, onCancel: () => this.finish() });
  }

  event({ id, message }: LoggedEvent): void {
    // A client this far behind is not reading: what is queued still reaches it, then it resumes.
    if (!this.ended && !this.sse.event('message', JSON.stringify(message), id)) this.end();
  }

  end(): void {
    this.finish();
    this.sse.close();
  }

  /** Follows the stream live (`stop` ends that), unless the replay already ended it. */
  following(stop: () => void): void {
    if (this.ended) return;
    this.stop = stop;
    this.keepAlive = setInterval(() => {
      if (!this.sse.comment('keepalive')) this.end();
    }, KEEP_ALIVE_MS);
    this.keepAlive.unref();
  }

  response(): Response {
    return new Response(this.sse.body, { status: 200, headers: SSE_HEADERS });
  }

  private finish(): void {
    this.ended = true;
    clearInterval(this.keepAlive);
    this.stop?.();
  }
}
