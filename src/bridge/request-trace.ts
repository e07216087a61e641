import type { JSONRPCRequest } from '@modelcontextprotocol/server';
import type { Attributes, Span } from '@opentelemetry/api';
import { errorType, markFailed, SpanKind, type Tracing } from '../ops/tracing.js';
import type { CallAnswer, CallContext } from './interceptors.js';
import type { UpstreamConnector } from './upstream.js';

/**
 * The spans of one client request on its way through the gateway (OpenTelemetry's MCP conventions): a
 * server span for the request as Gatehouse serves it, named `{method} {target}` (`tools/call echo`), and a
 * client span for the upstream's part, whose context the upstream receives in `params._meta.traceparent`
 * (SEP-414; every transport, stdio included) and, over HTTP, in the `traceparent` header.
 */
export interface RequestTrace {
  /** Runs `fn` with the server span active (the interceptor chain, the upstream's span). */
  run<T>(fn: () => T): T;
  /** Starts the upstream's client span; once per request, before {@link params}. */
  forward(): void;
  /** `params` with the upstream span's trace context in `_meta`; `params` itself while tracing is off. */
  params<P extends JSONRPCRequest['params']>(params: P): P;
  /** Runs `fn` (the send) with the upstream span active, so an HTTP upstream's request carries its headers. */
  sending<T>(fn: () => T): T;
  /** Ends the spans with the request's outcome: an answer (a JSON-RPC error marks both failed) or a failure. */
  end(outcome: CallAnswer | { readonly failure: unknown }): void;
}

/** Tracing off: every step passes through, and nothing is allocated per request. */
const UNTRACED: RequestTrace = {
  run: (fn) => fn(),
  forward: () => undefined,
  params: (params) => params,
  sending: (fn) => fn(),
  end: () => undefined,
};

/**
 * Opens the server span of `request`. Its parent is the client's `params._meta.traceparent` when it
 * carries a valid one (the HTTP request's span is then linked), else the active span (the HTTP request's,
 * itself a child of an incoming `traceparent` header).
 */
export function traceRequest(
  tracing: Tracing,
  request: JSONRPCRequest,
  call: CallContext,
  upstream: UpstreamConnector['kind'],
): RequestTrace {
  if (!tracing.enabled) return UNTRACED;
  const meta = request.params?._meta;
  const fromMeta =
    meta === undefined
      ? undefined
      : tracing.remoteParent({ traceparent: meta.traceparent, tracestate: meta.tracestate });
  const enclosing = tracing.activeSpan();
  const attributes = requestAttributes(request, call);
  const name = spanName(request, attributes);
  const server = tracing.startSpan(name, {
    kind: SpanKind.SERVER,
    attributes: {
      ...attributes,
      'enduser.id': call.principal.subject,
      'gatehouse.transport': call.transport,
    },
    ...(fromMeta !== undefined && {
      parent: fromMeta,
      ...(tracing.carrier(enclosing) !== undefined && { links: [{ context: enclosing.spanContext() }] }),
    }),
  });
  let client: Span | undefined;
  let ended = false;
  return {
    run: (fn) => tracing.withSpan(server, fn),
    forward() {
      client ??= tracing.withSpan(server, () =>
        tracing.startSpan(name, {
          kind: SpanKind.CLIENT,
          attributes: { ...attributes, 'gatehouse.upstream': upstream },
        }),
      );
    },
    params(params) {
      const carrier = client === undefined ? undefined : tracing.carrier(client);
      if (carrier === undefined) return params;
      const { traceparent, tracestate, ...kept } = params?._meta ?? {};
      return {
        ...params,
        _meta: {
          ...kept,
          traceparent: carrier.traceparent,
          ...(carrier.tracestate !== undefined && { tracestate: carrier.tracestate }),
        },
      } as typeof params;
    },
    sending: (fn) => (client === undefined ? fn() : tracing.withSpan(client, fn)),
    end(outcome) {
      if (ended) return;
      ended = true;
      const failed =
        'failure' in outcome
          ? errorType(outcome.failure)
          : 'error' in outcome
            ? String(outcome.error.code)
            : undefined;
      if (failed !== undefined) {
        if ('error' in outcome) {
          server.setAttribute('rpc.response.status_code', String(outcome.error.code));
          client?.setAttribute('rpc.response.status_code', String(outcome.error.code));
        }
        markFailed(server, failed);
        if (client !== undefined) markFailed(client, failed);
      }
      client?.end();
      server.end();
    },
  };
}

/** The MCP semantic-convention attributes of a request: never its arguments, which may hold anything. */
function requestAttributes(request: JSONRPCRequest, call: CallContext): Attributes {
  const attributes: Attributes = {
    'mcp.method.name': request.method,
    'jsonrpc.request.id': String(request.id),
  };
  if (call.sessionId !== undefined) attributes['mcp.session.id'] = call.sessionId;
  const params = request.params;
  if (request.method === 'tools/call' && typeof params?.name === 'string') {
    attributes['gen_ai.tool.name'] = params.name;
    attributes['gen_ai.operation.name'] = 'execute_tool';
  } else if (request.method === 'prompts/get' && typeof params?.name === 'string') {
    attributes['gen_ai.prompt.name'] = params.name;
  }
  return attributes;
}

/** Longest tool or prompt name put in a span name: names come from the client, span names should not grow. */
const MAX_TARGET_LENGTH = 128;

/** `{mcp.method.name} {target}`: the tool or prompt name when there is one (never a resource URI). */
function spanName(request: JSONRPCRequest, attributes: Attributes): string {
  const target = attributes['gen_ai.tool.name'] ?? attributes['gen_ai.prompt.name'];
  return typeof target === 'string' && target.length <= MAX_TARGET_LENGTH
    ? `${request.method} ${target}`
    : request.method;
}
