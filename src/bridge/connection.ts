import { randomBytes } from 'node:crypto';
import {
  isJSONRPCErrorResponse,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type RequestId,
  type Transport,
} from '@modelcontextprotocol/server';
import type { UpstreamFailureReason } from '../errors/gatehouse-error.js';
import { principalKey } from '../identity/principal.js';
import type { EventBus } from '../ops/events.js';
import type { Logger } from '../ops/logger.js';
import { disabledTracing } from '../ops/tracing.js';
import type { CallAnswer, CallContext, CallTransport, InterceptorChain } from './interceptors.js';
import { type RequestTrace, traceRequest } from './request-trace.js';
import {
  closeUpstream,
  credentialsExpireAt,
  credentialsExpired,
  type UpstreamConnector,
  type UpstreamIdentity,
} from './upstream.js';
import {
  describeUpstreamFailure,
  UpstreamExitedError,
  UpstreamTimeoutError,
  upstreamError,
  upstreamFailureReason,
  upstreamRpcError,
} from './upstream-failure.js';

export interface UpstreamConnectionOptions {
  readonly connector: UpstreamConnector;
  /** Who the connection acts for; its principal may be refreshed (same user), never replaced. */
  readonly identity: UpstreamIdentity;
  readonly chain: InterceptorChain;
  readonly transport: Exclude<CallTransport, 'stateless'>;
  readonly timeouts: UpstreamTimeouts;
  readonly events: EventBus;
  readonly logger: Logger;
  /**
   * Hands a message to the client. `answering` is the client request a response answers; for
   * notifications and server-to-client requests it is `undefined` and the caller routes by content.
   */
  readonly deliver: (message: JSONRPCMessage, answering: RequestId | undefined) => void;
  /** Called once if the upstream goes away by itself (a crash, a closed HTTP session). */
  readonly onExit?: () => void;
  /**
   * An HTTP upstream ended the SSE stream of client request `requestId` before answering it, and the
   * transport is resuming it (SEP-1699 polling); `retryMs` is how long it waited, as the upstream asked.
   */
  readonly onStreamPaused?: (requestId: RequestId, retryMs: number | undefined) => void;
}

/** How long an upstream may take, in milliseconds. */
export interface UpstreamTimeouts {
  /** To start and answer `initialize` (the first, or a replayed one). */
  readonly startMs: number;
  /**
   * For one relayed request to be answered; then it is answered with `upstream_timeout`. Absent: no
   * limit (a stdio tool may run as long as it likes).
   */
  readonly requestMs?: number | undefined;
}

/** How long a person may take over one question from the upstream (the SDK's own round timeout). */
const HUMAN_ROUND_MS = 10 * 60_000;

interface Pending {
  readonly request: JSONRPCRequest;
  readonly call: CallContext;
  deadline: NodeJS.Timeout | undefined;
  readonly trace: RequestTrace;
  /** The last SSE event id the upstream sent on this request's stream: how its resumption is recognised. */
  upstreamEventId?: string;
}

/** Gatehouse's own request waiting for the upstream: answered, or failed with why it never will be. */
interface InternalWaiter {
  answer(message: JSONRPCMessage): void;
  fail(error: unknown): void;
}

/**
 * One live upstream connection: the transport to the upstream MCP server for one session, started with a
 * deadline, every client request run through the interceptor chain, every answer matched to its request
 * and run back through the chain, requests still waiting answered with a stable reason when the upstream
 * goes away, and closed exactly once. The 2025-era session relay, WebSocket and legacy SSE all relay
 * through it; only how messages reach the client differs (`deliver`).
 */
export class UpstreamConnection {
  private readonly pending = new Map<RequestId, Pending>();
  /** Upstream requests to the client not answered yet (elicitation, sampling, roots), with when they were sent. */
  private readonly owedByClient = new Map<RequestId, number>();
  /** Gatehouse's own requests (a replayed `initialize`), by id; a random prefix keeps client ids out. */
  private readonly internal = new Map<RequestId, InternalWaiter>();
  private readonly internalPrefix = `gatehouse-${randomBytes(6).toString('base64url')}-`;
  private internalSeq = 0;
  private closed = false;
  /** Set once `open` succeeded: an exit before that is a failure to start, reported by `open` itself. */
  private started = false;
  private exitedEarly = false;
  /** The previous message's turn through the chain: messages are handed on in arrival order. */
  private ordering: Promise<void> = Promise.resolve();

  private constructor(
    private readonly options: UpstreamConnectionOptions,
    private readonly upstream: Transport,
  ) {}

  /**
   * Opens and starts the upstream. With `replay`, an upstream (re)started for a session that is already
   * initialized is brought to the state the client believes it is in: the client's original `initialize`
   * is sent again, then `notifications/initialized`. Throws the `upstreamError` for the failure's reason.
   */
  static async open(
    options: UpstreamConnectionOptions,
    replay?: Record<string, unknown> | undefined,
  ): Promise<UpstreamConnection> {
    const { connector, identity, logger, events } = options;
    const transport = connector.open(identity, {
      resuming: (lastEventId, retryMs) => connection.resuming(lastEventId, retryMs),
    });
    const connection = new UpstreamConnection(options, transport);
    transport.onmessage = (message) => connection.fromUpstream(message);
    transport.onerror = (error) => connection.transportError(error);
    transport.onclose = () => connection.exited();
    try {
      await withDeadline(transport.start(), options.timeouts.startMs, 'the upstream did not start in time');
      if (replay !== undefined) await connection.replayInitialize(replay);
      if (connection.exitedEarly) throw new UpstreamExitedError('the upstream exited as it started');
    } catch (error) {
      connection.closed = true;
      transport.onclose = undefined;
      await closeUpstream(transport, logger);
      throw connection.failure(error, true);
    }
    connection.started = true;
    events.emit({
      type: 'upstream.started',
      upstream: connector.kind,
      principal: principalKey(identity.principal),
      ...(identity.sessionId !== undefined && { sessionId: identity.sessionId }),
    });
    return connection;
  }

  private tracing() {
    return this.options.connector.tracing ?? disabledTracing;
  }

  /** When the brokered credentials the upstream runs with expire (epoch ms), if it has any. */
  credentialsExpireAt(): number | undefined {
    return credentialsExpireAt(this.upstream);
  }

  credentialsExpired(): boolean {
    return credentialsExpired(this.upstream);
  }

  /**
   * A message from the client. Requests pass the interceptor chain (which may answer them here); what
   * is forwarded resolves once the transport has taken it. A request the upstream cannot take is
   * answered with the failure's reason, never left waiting. Messages reach the upstream in the order
   * they arrived, however long an interceptor takes (a cancellation never overtakes its request), while
   * a slow send (an HTTP upstream answering a long call) holds up nothing behind it.
   */
  fromClient(message: JSONRPCMessage, call: Omit<CallContext, 'transport' | 'sessionId'>): Promise<void> {
    const routed = this.ordering.then(() => this.route(message, call));
    this.ordering = routed.then(
      () => undefined,
      () => undefined,
    );
    return routed.then(({ sent }) => sent);
  }

  /**
   * Runs the chain for one message and starts its send; resolves, in order, with the send in flight
   * (boxed, so the send is not awaited here: a promise returned bare would be adopted).
   */
  private async route(
    message: JSONRPCMessage,
    call: Omit<CallContext, 'transport' | 'sessionId'>,
  ): Promise<{ readonly sent: Promise<void> }> {
    const done = { sent: Promise.resolve() };
    if (this.closed) return done;
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      this.owedByClient.delete(message.id as RequestId);
    }
    let trace: RequestTrace | undefined;
    let outgoing = message;
    if (isJSONRPCRequest(message)) {
      const context: CallContext = {
        ...call,
        sessionId: this.options.identity.sessionId,
        transport: this.options.transport,
      };
      trace = traceRequest(this.tracing(), message, context, this.options.connector.kind);
      const chain = this.options.chain;
      const answered = await trace.run(() => chain.request(message, context));
      if (answered !== undefined) {
        trace.end(answered);
        this.options.deliver(toMessage(message.id, answered), message.id);
        return done;
      }
      trace.forward();
      const params = trace.params(message.params);
      if (params !== message.params) outgoing = { ...message, params };
      this.pending.set(message.id, {
        request: message,
        call: context,
        deadline: this.deadline(message.id),
        trace,
      });
    }
    // An HTTP upstream's answer stream that ends without the answer will never bring it.
    const streamEnded = isJSONRPCRequest(message)
      ? {
          onRequestStreamEnd: () => {
            if (this.pending.get(message.id)?.request === message) {
              this.answerWithError(message.id, upstreamRpcError('upstream_invalid_response'));
            }
          },
          onresumptiontoken: (eventId: string) => {
            const pending = this.pending.get(message.id);
            if (pending?.request === message) pending.upstreamEventId = eventId;
          },
        }
      : undefined;
    const send = () => this.upstream.send(outgoing, streamEnded);
    const sent = (trace === undefined ? send() : trace.sending(send)).catch((error: unknown) => {
      const reason = upstreamFailureReason(error, false, this.options.connector.kind);
      this.options.logger.warn(
        { err: error, sessionId: this.options.identity.sessionId, reason },
        'could not forward a message upstream',
      );
      if (isJSONRPCRequest(message)) this.answerWithError(message.id, upstreamRpcError(reason));
    });
    return { sent };
  }

  /**
   * Sends one request of the client's and waits for its answer (after the interceptor chain) instead of
   * delivering it: how a session's first `initialize` learns whether the upstream works before the
   * session is promised to the client. Throws the `upstreamError` for a failure.
   */
  async exchange(
    request: JSONRPCRequest,
    call: Omit<CallContext, 'transport' | 'sessionId'>,
  ): Promise<JSONRPCMessage> {
    const context: CallContext = {
      ...call,
      sessionId: this.options.identity.sessionId,
      transport: this.options.transport,
    };
    const trace = traceRequest(this.tracing(), request, context, this.options.connector.kind);
    const chain = this.options.chain;
    const answered = await trace.run(() => chain.request(request, context));
    if (answered !== undefined) {
      trace.end(answered);
      return toMessage(request.id, answered);
    }
    try {
      if (this.closed) throw new UpstreamExitedError('the upstream exited');
      trace.forward();
      const params = trace.params(request.params);
      const outgoing = params === request.params ? request : { ...request, params };
      const answer = await trace.sending(() => this.internalRequest(outgoing, this.options.timeouts.startMs));
      const final = chain.response(request, toAnswer(answer), context);
      trace.end(final);
      return toMessage(request.id, final);
    } catch (error) {
      trace.end({ failure: error });
      throw this.failure(error, true);
    }
  }

  /** Answers every waiting request with `reason` (the upstream is being replaced or went away). */
  failPending(reason: UpstreamFailureReason, message?: string): void {
    for (const id of [...this.pending.keys()]) this.answerWithError(id, upstreamRpcError(reason, message));
  }

  /** Stops the upstream for good (an HTTP upstream's MCP session is deleted first); once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.upstream.onclose = undefined;
    this.upstream.onmessage = undefined;
    this.failInternal(new UpstreamExitedError('the connection was closed'));
    for (const pending of this.pending.values()) {
      clearTimeout(pending.deadline);
      pending.trace.end({ failure: 'connection_closed' });
    }
    await closeUpstream(this.upstream, this.options.logger);
  }

  /**
   * The deadline of a relayed request. While the upstream waits on the client (an elicitation a person
   * answers, a sampling call), the upstream is not the slow one: the deadline starts over instead.
   */
  private deadline(id: RequestId): NodeJS.Timeout | undefined {
    const timeoutMs = this.options.timeouts.requestMs;
    if (timeoutMs === undefined) return undefined;
    return setTimeout(() => {
      const pending = this.pending.get(id);
      if (pending !== undefined && this.awaitingClient()) {
        pending.deadline = this.deadline(id);
        return;
      }
      this.answerWithError(id, upstreamRpcError('upstream_timeout'));
    }, timeoutMs);
  }

  /** Whether the upstream waits on the client; a question left unanswered for long stops counting. */
  private awaitingClient(): boolean {
    const now = Date.now();
    for (const [id, sentAt] of this.owedByClient) {
      if (now - sentAt > HUMAN_ROUND_MS) this.owedByClient.delete(id);
    }
    return this.owedByClient.size > 0;
  }

  private fromUpstream(message: JSONRPCMessage): void {
    if (isJSONRPCRequest(message)) this.owedByClient.set(message.id, Date.now());
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      const id = message.id;
      if (id === undefined || id === null) return;
      const waiter = this.internal.get(id);
      if (waiter !== undefined) {
        waiter.answer(message);
        return;
      }
      const pending = this.pending.get(id);
      if (pending === undefined) {
        this.options.logger.debug(
          { sessionId: this.options.identity.sessionId, id },
          'dropped a response nobody waits for',
        );
        return;
      }
      this.pending.delete(id);
      clearTimeout(pending.deadline);
      if (pending.request.method === 'initialize') this.negotiated(message);
      const answer = this.options.chain.response(pending.request, toAnswer(message), pending.call);
      pending.trace.end(answer);
      this.options.deliver(toMessage(id, answer), id);
      return;
    }
    this.options.deliver(message, undefined);
  }

  /**
   * The protocol version the upstream chose: an HTTP transport sends it as `MCP-Protocol-Version` from now
   * on, as a client must (the upstream otherwise assumes 2025-03-26, without SEP-1699 priming events).
   */
  private negotiated(answer: JSONRPCMessage): void {
    const version = isJSONRPCResultResponse(answer) ? answer.result.protocolVersion : undefined;
    if (typeof version === 'string') this.upstream.setProtocolVersion?.(version);
  }

  private resuming(lastEventId: string, retryMs: number | undefined): void {
    for (const [id, pending] of this.pending) {
      if (pending.upstreamEventId === lastEventId) this.options.onStreamPaused?.(id, retryMs);
    }
  }

  private answerWithError(id: RequestId, error: ReturnType<typeof upstreamRpcError>): void {
    const pending = this.pending.get(id);
    this.pending.delete(id);
    if (pending === undefined) return;
    clearTimeout(pending.deadline);
    const answer = this.options.chain.response(pending.request, { error }, pending.call);
    pending.trace.end(answer);
    this.options.deliver(toMessage(id, answer), id);
  }

  private exited(): void {
    if (this.closed) return;
    if (!this.started) {
      this.exitedEarly = true;
      this.failInternal(new UpstreamExitedError('the upstream exited'));
      return;
    }
    this.closed = true;
    const { identity, logger, events, connector } = this.options;
    // Reported as an `upstream.failed` event; the log line only adds what was waiting.
    logger.debug({ sessionId: identity.sessionId, waiting: this.pending.size }, 'upstream MCP server exited');
    events.emit({
      type: 'upstream.failed',
      upstream: connector.kind,
      reason: 'upstream_exited',
      principal: principalKey(identity.principal),
      ...(identity.sessionId !== undefined && { sessionId: identity.sessionId }),
    });
    this.failInternal(new UpstreamExitedError('the upstream exited'));
    this.failPending('upstream_exited');
    this.options.onExit?.();
  }

  private async replayInitialize(params: Record<string, unknown>): Promise<void> {
    const id = `${this.internalPrefix}${++this.internalSeq}`;
    const answer = await this.internalRequest(
      { jsonrpc: '2.0', id, method: 'initialize', params },
      this.options.timeouts.startMs,
    );
    if (isJSONRPCErrorResponse(answer))
      throw new Error(`upstream refused initialize: ${answer.error.message}`);
    await this.upstream.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  }

  /**
   * Sends `request` and resolves with the upstream's answer; rejects on timeout, exit, a failed send or a
   * transport error while it waits (an HTTP upstream whose stream ended without the answer). An HTTP
   * upstream's `send` lasts until its answer arrives, so the deadline runs beside it, not after.
   */
  private internalRequest(request: JSONRPCRequest, timeoutMs: number): Promise<JSONRPCMessage> {
    return new Promise<JSONRPCMessage>((resolve, reject) => {
      const settle = (outcome: () => void) => {
        clearTimeout(timer);
        this.internal.delete(request.id);
        outcome();
      };
      const timer = setTimeout(
        () =>
          settle(() =>
            reject(new UpstreamTimeoutError(`no answer to ${request.method} within ${timeoutMs} ms`)),
          ),
        timeoutMs,
      );
      this.internal.set(request.id, {
        answer: (message) =>
          settle(() => {
            if (request.method === 'initialize') this.negotiated(message);
            resolve(message);
          }),
        fail: (error) => settle(() => reject(error)),
      });
      this.upstream
        .send(request, {
          onRequestStreamEnd: () =>
            settle(() => reject(new UpstreamExitedError('the answer stream ended without the answer'))),
        })
        .catch((error: unknown) => settle(() => reject(error)));
    });
  }

  private failInternal(error: unknown): void {
    for (const waiter of [...this.internal.values()]) waiter.fail(error);
  }

  /**
   * The transport reported an error. While Gatehouse itself waits for an answer (starting the session),
   * that answer will not come: fail now rather than at the deadline. Otherwise the error is logged; an
   * upstream that is gone announces it by closing.
   */
  private transportError(error: Error): void {
    this.options.logger.warn(
      { err: error, sessionId: this.options.identity.sessionId },
      'upstream transport error',
    );
    this.failInternal(error);
  }

  /** Logs and reports a failure, and turns it into the error the client gets. */
  private failure(error: unknown, starting: boolean) {
    const { identity, logger, events, connector } = this.options;
    const reason = upstreamFailureReason(error, starting, connector.kind);
    // Reported as an `upstream.failed` event; the cause (which the event never carries) is logged here.
    logger.debug({ err: error, sessionId: identity.sessionId, reason }, describeUpstreamFailure(reason));
    events.emit({
      type: 'upstream.failed',
      upstream: connector.kind,
      reason,
      principal: principalKey(identity.principal),
      ...(identity.sessionId !== undefined && { sessionId: identity.sessionId }),
    });
    return upstreamError(reason, error);
  }
}

/** Resolves with `promise`, or rejects with an `UpstreamTimeoutError` after `timeoutMs`. */
export async function withDeadline<T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UpstreamTimeoutError(message)), timeoutMs);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

export function toAnswer(message: JSONRPCMessage): CallAnswer {
  if (isJSONRPCErrorResponse(message)) return { error: message.error };
  if (isJSONRPCResultResponse(message)) return { result: message.result as Record<string, unknown> };
  return { error: { code: -32603, message: 'the upstream answered with something that is not a response' } };
}

export function toMessage(id: RequestId, answer: CallAnswer): JSONRPCMessage {
  return 'result' in answer
    ? { jsonrpc: '2.0', id, result: answer.result }
    : { jsonrpc: '2.0', id, error: answer.error as { code: number; message: string; data?: unknown } };
}
