import type { JSONRPCRequest } from '@modelcontextprotocol/server';
import type { CallAnswer, Interceptor } from '../bridge/interceptors.js';

/**
 * The gateway's side of a graceful shutdown: whether it is draining (`/readyz` answers 503 `draining`,
 * `serveGateway` refuses new requests) and which upstream calls are still waiting for their answer.
 *
 * HTTP requests in flight are counted by the server itself (`serveGateway`): a Streamable HTTP call holds
 * its request open until the answer. Calls on WebSocket and legacy SSE arrive as messages on a connection
 * that stays open, so only the interceptor chain sees them begin and end; they are counted here.
 */
export interface GatewayDrain {
  /** True once {@link GatewayDrain.begin} was called; never false again. */
  readonly draining: boolean;
  begin(): void;
  /** WebSocket and legacy SSE calls relayed to the upstream and not answered yet. */
  readonly callsInFlight: number;
  /** In the interceptor chain: sees every call go out and its answer come back. */
  readonly interceptor: Interceptor;
  /**
   * Forgets a session's calls: its upstream was closed, so they will never be answered (without this a
   * session ended mid-call would hold every later drain until its deadline).
   */
  forgetSession(sessionId: string): void;
}

/** The answer to a call that arrives on a WebSocket or legacy SSE connection while the instance drains. */
const SHUTTING_DOWN: CallAnswer = {
  error: {
    code: -32000,
    message: 'Gatehouse is shutting down; retry shortly',
    data: { code: 'ERR_SHUTTING_DOWN' },
  },
};

/** Transports whose calls do not each hold an HTTP request open. */
const MESSAGE_TRANSPORTS = new Set(['websocket', 'legacy-sse']);

export function createGatewayDrain(): GatewayDrain {
  let draining = false;
  const calls = new Map<JSONRPCRequest, string | undefined>();
  return {
    get draining() {
      return draining;
    },
    begin() {
      draining = true;
    },
    get callsInFlight() {
      return calls.size;
    },
    interceptor: {
      request(request, call) {
        if (!MESSAGE_TRANSPORTS.has(call.transport)) return undefined;
        // A new call on a connection that stays open would stretch the drain: it is refused, as a new
        // HTTP request is, and the client retries it on another instance.
        if (draining) return SHUTTING_DOWN;
        calls.set(request, call.sessionId);
        return undefined;
      },
      response(request, answer) {
        calls.delete(request);
        return answer;
      },
    },
    forgetSession(sessionId) {
      for (const [request, owner] of calls) if (owner === sessionId) calls.delete(request);
    },
  };
}
