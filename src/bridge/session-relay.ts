import {
  isInitializeRequest,
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type RequestId,
  type Transport,
  WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server';
import { createDiagnosticsInterceptor, type DiagnosticsInterceptor } from '../diagnostics/interceptor.js';
import type { Diagnostics } from '../diagnostics/tools.js';
import { GatehouseError } from '../errors/gatehouse-error.js';
import type { Principal } from '../identity/principal.js';
import type { Logger } from '../ops/logger.js';
import {
  closeUpstream,
  credentialsExpired,
  type UpstreamConnector,
  type UpstreamIdentity,
} from './upstream.js';

/** JSON-RPC error code sent for requests the upstream can no longer answer (implementation-defined range). */
export const UPSTREAM_CLOSED_CODE = -32000;

export interface SessionRelayOptions {
  readonly sessionId: string;
  readonly identity: UpstreamIdentity;
  readonly connector: UpstreamConnector;
  readonly logger: Logger;
  /**
   * The client's original `initialize` parameters. When the relay must (re)start the upstream for a
   * session that is already initialized (after a gateway restart or an upstream crash), it replays them
   * so the new upstream is in the state the client believes it is in.
   */
  readonly initializeParams: Record<string, unknown> | undefined;
  /** How long a (re)started upstream may take to answer `initialize`. */
  readonly startTimeoutMs: number;
  /** The `gatehouse_*` tools, when diagnostics are enabled: listed with the upstream's and answered here. */
  readonly diagnostics?: Diagnostics | undefined;
}

/** How the request being relayed was authenticated (for the diagnostics tools). */
export interface RelayRequestAuth {
  readonly cacheHit: boolean;
}

/**
 * Relays one 2025-era MCP session between the client and its own upstream connection.
 *
 * The relay forwards JSON-RPC messages verbatim in both directions (unknown methods included), so the
 * client and upstream negotiate the protocol themselves. HTTP framing on the client side (Accept and
 * Content-Type checks, SSE, batching, protocol-version header) is the SDK's
 * `WebStandardStreamableHTTPServerTransport`, used once per HTTP exchange; the session itself (its id,
 * owner and lifetime) is Gatehouse's, which is what lets a session outlive the process that created it.
 */
export class SessionRelay {
  readonly sessionId: string;
  private readonly options: SessionRelayOptions;
  private upstream: Transport | undefined;
  private starting: Promise<Transport> | undefined;
  /** Client request id → the HTTP exchange waiting for its response. */
  private readonly pending = new Map<RequestId, WebStandardStreamableHTTPServerTransport>();
  /** progressToken → client request id, so upstream progress reaches the stream of the request it is about. */
  private readonly progressTokens = new Map<string | number, RequestId>();
  /** Open GET streams; unsolicited upstream messages go to the newest. */
  private readonly standalone = new Set<WebStandardStreamableHTTPServerTransport>();
  private readonly internal = new Map<RequestId, (message: JSONRPCMessage) => void>();
  private internalSeq = 0;
  private closed = false;
  private principal: Principal;
  private readonly identity: UpstreamIdentity;
  /** The `gatehouse_*` tools in this session's traffic, when enabled. */
  private readonly diagnostics: DiagnosticsInterceptor | undefined;

  constructor(options: SessionRelayOptions) {
    this.options = options;
    this.sessionId = options.sessionId;
    this.principal = options.identity.principal;
    this.diagnostics =
      options.diagnostics === undefined
        ? undefined
        : createDiagnosticsInterceptor(options.diagnostics, options.logger);
    const relay = this;
    this.identity = {
      get principal() {
        return relay.principal;
      },
      sessionId: options.sessionId,
    };
  }

  /** Adopts a newer verification of the session's user (same issuer and subject, checked by the caller). */
  refreshPrincipal(principal: Principal): void {
    this.principal = principal;
  }

  /** Serves one POST or GET of this session; `parsedBody` is the already-validated JSON body of a POST. */
  async handle(
    request: Request,
    parsedBody: unknown,
    auth: RelayRequestAuth = { cacheHit: false },
  ): Promise<Response> {
    if (this.closed) throw new GatehouseError('ERR_SESSION_NOT_FOUND', 'Session not found');
    const isOwnInitialize = request.method === 'POST' && isInitializeRequest(parsedBody);
    const upstream = await this.ensureUpstream(!isOwnInitialize);
    const exchange = new WebStandardStreamableHTTPServerTransport({});
    const principal = this.principal;
    exchange.onmessage = (message) =>
      this.fromClient(message, exchange, upstream, { principal, cacheHit: auth.cacheHit });
    await exchange.start();
    if (request.method === 'GET') {
      this.standalone.add(exchange);
      request.signal.addEventListener('abort', () => this.standalone.delete(exchange), { once: true });
    } else {
      request.signal.addEventListener('abort', () => this.forgetExchange(exchange), { once: true });
    }
    return exchange.handleRequest(request, { parsedBody });
  }

  /** Stops the upstream and closes every open stream of this session. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failPending('session ended');
    for (const exchange of this.standalone) await exchange.close();
    this.standalone.clear();
    const upstream = this.upstream ?? (await this.starting?.catch(() => undefined));
    this.upstream = undefined;
    if (upstream !== undefined) {
      upstream.onclose = undefined;
      await closeUpstream(upstream, this.options.logger);
    }
  }

  private fromClient(
    message: JSONRPCMessage,
    exchange: WebStandardStreamableHTTPServerTransport,
    upstream: Transport,
    caller: { principal: Principal; cacheHit: boolean },
  ): void {
    // Diagnostics calls are answered here, never forwarded: the upstream does not know these tools.
    const answered = this.diagnostics?.fromClient(message, { ...caller, sessionId: this.sessionId });
    if (answered !== undefined) {
      void answered.then((answer) => this.deliver(exchange, answer, undefined));
      return;
    }
    if (isJSONRPCRequest(message)) {
      this.pending.set(message.id, exchange);
      const token = message.params?._meta?.progressToken;
      if (token !== undefined) this.progressTokens.set(token, message.id);
    }
    upstream.send(message).catch((error: unknown) => {
      this.options.logger.warn(
        { err: error, sessionId: this.sessionId },
        'could not forward message upstream',
      );
      if (isJSONRPCRequest(message))
        this.answerWithError(message.id, 'the upstream MCP server is unavailable');
    });
  }

  private fromUpstream(message: JSONRPCMessage): void {
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      const id = message.id;
      if (id === undefined || id === null) return;
      const waiter = this.internal.get(id);
      if (waiter !== undefined) {
        this.internal.delete(id);
        waiter(message);
        return;
      }
      const exchange = this.pending.get(id);
      this.pending.delete(id);
      if (this.diagnostics !== undefined) message = this.diagnostics.fromUpstream(message);
      for (const [token, requestId] of this.progressTokens)
        if (requestId === id) this.progressTokens.delete(token);
      if (exchange === undefined) {
        this.options.logger.debug({ sessionId: this.sessionId, id }, 'dropped a response nobody waits for');
        return;
      }
      this.deliver(exchange, message, undefined);
      return;
    }
    // Notifications and server-to-client requests belong to the request they are about (2025-11-25
    // transports: sent on that request's stream); without a way to tell, to the newest pending request,
    // and otherwise to the standalone GET stream.
    const related = this.relatedRequest(message);
    if (related !== undefined) {
      const exchange = this.pending.get(related);
      if (exchange !== undefined) {
        this.deliver(exchange, message, related);
        return;
      }
    }
    const stream = [...this.standalone].at(-1);
    if (stream !== undefined) {
      this.deliver(stream, message, undefined);
      return;
    }
    this.options.logger.debug(
      { sessionId: this.sessionId },
      'dropped an upstream message with no open stream',
    );
  }

  private relatedRequest(message: JSONRPCMessage): RequestId | undefined {
    if (isJSONRPCNotification(message) && message.method === 'notifications/progress') {
      const token = message.params?.progressToken;
      if ((typeof token === 'string' || typeof token === 'number') && this.progressTokens.has(token)) {
        return this.progressTokens.get(token);
      }
    }
    return [...this.pending.keys()].at(-1);
  }

  private deliver(
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

  private async ensureUpstream(replayInitialize: boolean): Promise<Transport> {
    if (this.upstream !== undefined && credentialsExpired(this.upstream)) {
      // Brokered credentials are never used past their expiry: the child that holds them is replaced by
      // a fresh one (fresh credentials, initialize replayed) before this request reaches it. Requests
      // still running on the old child were running on expired credentials; they fail like on a crash.
      const stale = this.upstream;
      this.upstream = undefined;
      stale.onclose = undefined;
      this.failPending('the upstream credentials expired; retry the request');
      await closeUpstream(stale, this.options.logger);
      this.options.logger.info({ sessionId: this.sessionId }, 'credentials expired; restarting upstream');
      return this.ensureUpstream(true);
    }
    if (this.upstream !== undefined) return this.upstream;
    this.starting ??= this.startUpstream(replayInitialize).finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async startUpstream(replayInitialize: boolean): Promise<Transport> {
    const { connector, logger } = this.options;
    const transport = connector.open(this.identity);
    transport.onmessage = (message) => this.fromUpstream(message);
    transport.onerror = (error) =>
      logger.warn({ err: error, sessionId: this.sessionId }, 'upstream transport error');
    transport.onclose = () => this.onUpstreamClosed(transport);
    try {
      await transport.start();
      if (replayInitialize && this.options.initializeParams !== undefined) {
        await this.replayInitialize(transport, this.options.initializeParams);
        logger.info(
          { sessionId: this.sessionId, upstream: connector.kind },
          'session re-established upstream',
        );
      }
    } catch (error) {
      transport.onclose = undefined;
      await closeUpstream(transport, logger);
      throw new GatehouseError('ERR_UPSTREAM_UNAVAILABLE', 'the upstream MCP server could not be started', {
        cause: error,
      });
    }
    this.upstream = transport;
    return transport;
  }

  private async replayInitialize(transport: Transport, params: Record<string, unknown>): Promise<void> {
    const id = `gatehouse-init-${++this.internalSeq}`;
    const answered = new Promise<JSONRPCMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.internal.delete(id);
        reject(new Error('upstream did not answer initialize in time'));
      }, this.options.startTimeoutMs);
      this.internal.set(id, (message) => {
        clearTimeout(timer);
        resolve(message);
      });
    });
    const request: JSONRPCRequest = { jsonrpc: '2.0', id, method: 'initialize', params };
    await transport.send(request);
    const answer = await answered;
    if (isJSONRPCErrorResponse(answer))
      throw new Error(`upstream refused initialize: ${answer.error.message}`);
    await transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  }

  private onUpstreamClosed(transport: Transport): void {
    if (this.upstream !== transport) return;
    this.upstream = undefined;
    if (this.closed) return;
    this.options.logger.warn(
      { sessionId: this.sessionId, pending: this.pending.size },
      'upstream MCP server exited; pending requests failed, the next request restarts it',
    );
    this.failPending('the upstream MCP server exited before answering');
    for (const exchange of this.standalone) void exchange.close();
    this.standalone.clear();
  }

  private failPending(reason: string): void {
    for (const id of [...this.pending.keys()]) this.answerWithError(id, reason);
    this.progressTokens.clear();
  }

  private answerWithError(id: RequestId, message: string): void {
    const exchange = this.pending.get(id);
    this.pending.delete(id);
    if (exchange === undefined) return;
    this.deliver(exchange, { jsonrpc: '2.0', id, error: { code: UPSTREAM_CLOSED_CODE, message } }, undefined);
  }

  private forgetExchange(exchange: WebStandardStreamableHTTPServerTransport): void {
    for (const [id, owner] of this.pending) if (owner === exchange) this.pending.delete(id);
  }
}
