import type { JSONRPCRequest } from '@modelcontextprotocol/server';
import type { Principal } from '../identity/principal.js';

/** Which client-facing path a call came through. */
export type CallTransport = 'streamable-http' | 'stateless' | 'websocket' | 'legacy-sse';

/** Who is calling, as the guard established it for this very request, and where. */
export interface CallContext {
  readonly principal: Principal;
  /** Whether this request's bearer token was answered from the verification cache. */
  readonly cacheHit: boolean;
  /** The caller's Gatehouse session; `undefined` for stateless (2026-07-28) requests. */
  readonly sessionId: string | undefined;
  readonly transport: CallTransport;
}

/** The answer to one request: a result, or a JSON-RPC error. */
export type CallAnswer =
  | { readonly result: Record<string, unknown> }
  | { readonly error: { readonly code: number; readonly message: string; readonly data?: unknown } };

/**
 * One concern on the upstream connection (diagnostics tools, tool-call events; tool policy and downstream
 * connections next). Every path to the upstream — a 2025-era session, stateless requests, WebSocket,
 * legacy SSE — runs the same chain, so a concern is written once and holds everywhere.
 */
export interface Interceptor {
  /**
   * A client request on its way to the upstream. Return an answer to stop it here: it never reaches the
   * upstream, and the interceptors it already passed see the answer in their `response`.
   */
  request?(
    request: JSONRPCRequest,
    call: CallContext,
  ): CallAnswer | undefined | Promise<CallAnswer | undefined>;
  /** The answer to a request this interceptor let through (from the upstream or a later interceptor). */
  response?(request: JSONRPCRequest, answer: CallAnswer, call: CallContext): CallAnswer;
  /** The server capabilities the client is told about (the `initialize` result; the stateless server's). */
  capabilities?(capabilities: Record<string, unknown>): Record<string, unknown>;
}

export interface InterceptorChain {
  /** Runs the request hooks in order; an answer from one runs the response hooks of those before it. */
  request(request: JSONRPCRequest, call: CallContext): Promise<CallAnswer | undefined>;
  /** Runs every response hook, innermost first (and the capability hooks on an `initialize` result). */
  response(request: JSONRPCRequest, answer: CallAnswer, call: CallContext): CallAnswer;
  capabilities(capabilities: Record<string, unknown>): Record<string, unknown>;
}

/**
 * Composes interceptors like an onion: requests pass outside-in, answers come back inside-out, and an
 * interceptor that answers a request itself is the innermost layer for that request.
 */
export function createInterceptorChain(interceptors: readonly Interceptor[]): InterceptorChain {
  function capabilities(declared: Record<string, unknown>): Record<string, unknown> {
    return interceptors.reduce((caps, interceptor) => interceptor.capabilities?.(caps) ?? caps, declared);
  }

  function unwind(request: JSONRPCRequest, answer: CallAnswer, call: CallContext, from: number): CallAnswer {
    let current = answer;
    for (let i = from - 1; i >= 0; i--) {
      current = interceptors[i]?.response?.(request, current, call) ?? current;
    }
    if (request.method === 'initialize' && 'result' in current) {
      const declared = current.result.capabilities;
      if (typeof declared === 'object' && declared !== null && !Array.isArray(declared)) {
        current = {
          result: { ...current.result, capabilities: capabilities(declared as Record<string, unknown>) },
        };
      }
    }
    return current;
  }

  return {
    async request(request, call) {
      for (let i = 0; i < interceptors.length; i++) {
        const answer = await interceptors[i]?.request?.(request, call);
        if (answer !== undefined) return unwind(request, answer, call, i);
      }
      return undefined;
    },
    response: (request, answer, call) => unwind(request, answer, call, interceptors.length),
    capabilities,
  };
}
