import { randomBytes } from 'node:crypto';
import {
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type JSONRPCNotification,
  LOG_LEVEL_META_KEY,
  type RequestId,
  SUBSCRIPTION_ID_META_KEY,
  type Transport,
} from '@modelcontextprotocol/server';
import type { CallAnswer } from './interceptors.js';
import { UpstreamTimeoutError } from './upstream-failure.js';

/** One 2026-07-28 request relayed as a message: its params (envelope included) exactly as the client sent them. */
export interface RoutedRequest {
  readonly method: string;
  readonly params?: Record<string, unknown> | undefined;
  /** The client's own id: a subscription's notifications are tagged with it, as the server would have. */
  readonly clientId: RequestId;
}

export interface RouteOptions {
  /** Receives the notifications that belong to the request (progress, logging, subscription events). */
  readonly notify: (notification: JSONRPCNotification) => void;
  readonly signal: AbortSignal;
  readonly timeoutMs?: number | undefined;
}

interface Waiting {
  readonly request: RoutedRequest;
  readonly options: RouteOptions;
  readonly progressToken: unknown;
  readonly wantsLogs: boolean;
  readonly listen: boolean;
  settle(outcome: { answer: CallAnswer } | { failure: unknown }): void;
}

/**
 * Relays 2026-07-28 requests over one upstream connection that speaks that revision (a per-user stdio
 * child): each request goes upstream under an id of the gateway's (so concurrent clients never collide),
 * with the client's envelope, `inputResponses` and `requestState` untouched, and comes back as the raw
 * result (an `input_required` one included). Over stdio the messages that belong to a request carry no
 * stream of their own: progress is matched by its token, subscription events by their subscription id,
 * log messages go to the newest request that asked for them. Whatever is not the router's is handed to
 * `fallback` (the SDK client that negotiated the connection).
 */
export class UpstreamRouter {
  private readonly prefix = `gh-${randomBytes(6).toString('base64url')}-`;
  private seq = 0;
  private readonly waiting = new Map<string, Waiting>();

  constructor(
    private readonly transport: Transport,
    fallback: ((message: JSONRPCMessage) => void) | undefined,
  ) {
    transport.onmessage = (message) => {
      if (!this.route(message)) fallback?.(message);
    };
  }

  /** Fails every request still waiting (the connection closed). */
  failAll(error: unknown): void {
    for (const entry of [...this.waiting.values()]) entry.settle({ failure: error });
  }

  request(request: RoutedRequest, options: RouteOptions): Promise<CallAnswer> {
    const id = `${this.prefix}${++this.seq}`;
    const meta = (request.params?._meta ?? {}) as Record<string, unknown>;
    return new Promise<CallAnswer>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        entry.settle({ failure: options.signal.reason ?? new Error('aborted') });
        // The upstream stops working on it (2026-07-28 cancellation over stdio).
        void this.transport
          .send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id } })
          .catch(() => undefined);
      };
      const entry: Waiting = {
        request,
        options,
        progressToken: meta.progressToken,
        wantsLogs: typeof meta[LOG_LEVEL_META_KEY] === 'string',
        listen: request.method === 'subscriptions/listen',
        settle: (outcome) => {
          if (this.waiting.get(id) !== entry) return;
          this.waiting.delete(id);
          clearTimeout(timer);
          options.signal.removeEventListener('abort', onAbort);
          if ('answer' in outcome) resolve(outcome.answer);
          else reject(outcome.failure);
        },
      };
      this.waiting.set(id, entry);
      if (options.signal.aborted) {
        onAbort();
        return;
      }
      options.signal.addEventListener('abort', onAbort, { once: true });
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            entry.settle({ failure: new UpstreamTimeoutError(`no answer within ${options.timeoutMs} ms`) }),
          options.timeoutMs,
        );
      }
      this.transport
        .send({
          jsonrpc: '2.0',
          id,
          method: request.method,
          ...(request.params !== undefined && { params: request.params }),
        })
        .catch((error: unknown) => entry.settle({ failure: error }));
    });
  }

  /** True when `message` was the router's to deliver. */
  private route(message: JSONRPCMessage): boolean {
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      const entry = typeof message.id === 'string' ? this.waiting.get(message.id) : undefined;
      if (entry === undefined) return false;
      entry.settle({
        answer: isJSONRPCErrorResponse(message)
          ? { error: message.error }
          : { result: message.result as Record<string, unknown> },
      });
      return true;
    }
    if (!isJSONRPCNotification(message)) return false;
    const owner = this.ownerOf(message);
    if (owner === undefined) return false;
    owner.entry.options.notify(owner.notification);
    return true;
  }

  private ownerOf(
    message: JSONRPCNotification,
  ): { entry: Waiting; notification: JSONRPCNotification } | undefined {
    const params = message.params as Record<string, unknown> | undefined;
    const meta = params?._meta as Record<string, unknown> | undefined;
    const subscription = meta?.[SUBSCRIPTION_ID_META_KEY];
    if (typeof subscription === 'string') {
      const entry = this.waiting.get(subscription);
      if (entry === undefined) return undefined;
      // Tagged with the client's own request id, as a server it talked to directly would have.
      const tagged = { ...meta, [SUBSCRIPTION_ID_META_KEY]: String(entry.request.clientId) };
      return { entry, notification: { ...message, params: { ...params, _meta: tagged } } };
    }
    const entries = [...this.waiting.values()].filter((entry) => !entry.listen);
    if (message.method === 'notifications/progress') {
      const token = params?.progressToken;
      const entry = entries.find((candidate) => candidate.progressToken === token);
      return entry === undefined ? undefined : { entry, notification: message };
    }
    if (message.method === 'notifications/message') {
      const entry = entries.findLast((candidate) => candidate.wantsLogs);
      return entry === undefined ? undefined : { entry, notification: message };
    }
    return undefined;
  }
}
