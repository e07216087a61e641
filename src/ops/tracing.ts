import { AsyncLocalStorage } from 'node:async_hooks';
import {
  type Attributes,
  type Context,
  createTraceState,
  INVALID_SPAN_CONTEXT,
  isSpanContextValid,
  type Link,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import type { GatehouseConfig } from '../config/schema.js';
import type { EventBus } from './events.js';
import type { Logger } from './logger.js';

export type { Span };
export { SpanKind };

export type TracingConfig = GatehouseConfig['tracing'];

/** W3C Trace Context as it travels: HTTP headers, or the same keys in an MCP request's `params._meta` (SEP-414). */
export interface TraceCarrier {
  readonly traceparent: string;
  readonly tracestate?: string;
}

export interface SpanStart {
  readonly kind?: SpanKind;
  readonly attributes?: Attributes;
  /** The parent; default: the active span (see {@link Tracing.withSpan}), or none. */
  readonly parent?: Context;
  readonly links?: Link[];
}

/**
 * Gatehouse's tracing: spans from a tracer provider the gateway owns (nothing is registered globally, so an
 * application embedding Gatehouse keeps its own OpenTelemetry setup), and the active span kept in a
 * private async-local store. Disabled, every method is a pass-through around the API's no-op span:
 * nothing is recorded, nothing is propagated, and messages to the upstream are left byte for byte as
 * they were.
 */
export interface Tracing {
  readonly enabled: boolean;
  /**
   * Runs `fn` in a new span (active while it runs) and ends it when `fn` settles; a failure sets the
   * span's status to error with the error's stable code as `error.type` (never its message, which may
   * quote input).
   */
  inSpan<T>(name: string, start: SpanStart | undefined, fn: (span: Span) => Promise<T>): Promise<T>;
  /** Starts a span that ends elsewhere (an upstream request answered later); not made active. */
  startSpan(name: string, start?: SpanStart): Span;
  /** Runs `fn` with `span` active: spans started inside are its children, requests sent inside carry it. */
  withSpan<T>(span: Span, fn: () => T): T;
  /** The active span, or the API's no-op span. */
  activeSpan(): Span;
  /** The remote parent a `traceparent` (and `tracestate`) names; `undefined` when absent or malformed. */
  remoteParent(carrier: {
    readonly traceparent?: unknown;
    readonly tracestate?: unknown;
  }): Context | undefined;
  /** The carrier naming `span` as the parent of what is sent in it; `undefined` for the no-op span. */
  carrier(span: Span): TraceCarrier | undefined;
  /** Exports what is buffered, then stops the provider Gatehouse created (an injected one is only flushed). */
  shutdown(): Promise<void>;
}

/** The API's no-op span: what every span is while tracing is off. */
const NOOP_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** Tracing off: no spans, no context, no propagation. */
export const disabledTracing: Tracing = {
  enabled: false,
  inSpan: (_name, _start, fn) => fn(NOOP_SPAN),
  startSpan: () => NOOP_SPAN,
  withSpan: (_span, fn) => fn(),
  activeSpan: () => NOOP_SPAN,
  remoteParent: () => undefined,
  carrier: () => undefined,
  shutdown: async () => undefined,
};

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
/** W3C Trace Context §3.3.1.5: at most 32 list members; longer values are dropped rather than parsed. */
const MAX_TRACESTATE_LENGTH = 512;

/**
 * The span context a W3C `traceparent` names (Trace Context §3.2), or `undefined` when it is malformed:
 * version `ff`, an all-zero trace or parent id, upper-case hex, or (version 00) anything after the flags.
 * A bad `tracestate` is dropped, never the `traceparent` with it.
 */
export function parseTraceparent(traceparent: unknown, tracestate?: unknown): SpanContext | undefined {
  if (typeof traceparent !== 'string' || traceparent.length > 256) return undefined;
  const match = TRACEPARENT.exec(traceparent.trim());
  if (match === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = match;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  const context: SpanContext = {
    traceId: traceId as string,
    spanId: spanId as string,
    traceFlags: Number.parseInt(flags as string, 16),
    isRemote: true,
  };
  if (!isSpanContextValid(context)) return undefined;
  if (typeof tracestate === 'string' && tracestate.length > 0 && tracestate.length <= MAX_TRACESTATE_LENGTH) {
    return { ...context, traceState: createTraceState(tracestate) };
  }
  return context;
}

/** The `traceparent` (version 00) and `tracestate` naming `context` as the parent; `undefined` when invalid. */
export function formatTraceparent(context: SpanContext): TraceCarrier | undefined {
  if (!isSpanContextValid(context)) return undefined;
  const flags = (context.traceFlags & 0xff).toString(16).padStart(2, '0');
  const traceparent = `00-${context.traceId}-${context.spanId}-${flags}`;
  const tracestate = context.traceState?.serialize();
  return tracestate === undefined || tracestate === '' ? { traceparent } : { traceparent, tracestate };
}

/**
 * `headers` (a `fetch` init's) with the carrier of the active span set; unchanged when there is none.
 * What an HTTP upstream's transport sends, so the upstream's spans join the gateway's trace.
 */
export function withTraceHeaders(
  tracing: Tracing,
  headers: HeadersInit | undefined,
): HeadersInit | undefined {
  const carrier = tracing.carrier(tracing.activeSpan());
  if (carrier === undefined) return headers;
  const merged = new Headers(headers);
  merged.set('traceparent', carrier.traceparent);
  if (carrier.tracestate === undefined) merged.delete('tracestate');
  else merged.set('tracestate', carrier.tracestate);
  return merged;
}

/**
 * `error`'s stable code for `error.type`: a `GatehouseError` / `OAuthError` code, or the error's class name.
 * Never its message.
 */
export function errorType(error: unknown): string {
  if (typeof error === 'string') return error;
  if (typeof error === 'object' && error !== null) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.length <= 64) return code;
    const name = (error as { constructor?: { name?: unknown } }).constructor?.name;
    if (typeof name === 'string' && name !== '') return name;
  }
  return 'Error';
}

/** Marks `span` failed with `type` (`error.type`), never with a message that might quote input. */
export function markFailed(span: Span, type: string): void {
  span.setAttribute('error.type', type);
  span.setStatus({ code: SpanStatusCode.ERROR });
}

/** Event fields that are stable codes and names, never identities, addresses or free text. */
const EVENT_FIELDS = [
  'reason',
  'error',
  'status',
  'transport',
  'upstream',
  'outcome',
  'tool',
  'limit',
  'kind',
  'why',
  'action',
  'verifier',
] as const;

/**
 * Tracing's subscription to the event stream: each event becomes a span event (`session.opened`,
 * `guard.refused`, `tool.called`) on the span active where it was emitted, with its codes and names
 * (`reason`, `error`, `tool`, …) but no user, address or session id. Returns the unsubscribe function.
 */
export function subscribeTracing(events: EventBus, tracing: Tracing): () => void {
  if (!tracing.enabled) return () => undefined;
  return events.subscribe((event) => {
    const span = tracing.activeSpan();
    if (!span.isRecording()) return;
    const attributes: Attributes = {};
    const fields = event as unknown as Record<string, unknown>;
    for (const field of EVENT_FIELDS) {
      const value = fields[field];
      if (typeof value === 'string' || typeof value === 'number') attributes[`gatehouse.${field}`] = value;
    }
    span.addEvent(event.type, attributes);
  });
}

export interface TracingDeps {
  /**
   * Record with this provider instead of building one from `tracing` (tests pass a `BasicTracerProvider`
   * with an `InMemorySpanExporter`). Tracing is on whatever `tracing.enabled` says; the caller shuts it down.
   */
  readonly tracerProvider?: TracerProvider | undefined;
  readonly logger: Logger;
}

/**
 * Tracing as configured: off (the default) unless `tracing.enabled` or a provider is given. When on and
 * not injected, the OpenTelemetry SDK and the OTLP/HTTP exporter are loaded now, dynamically, so a
 * gateway without tracing never loads them.
 */
export async function createTracing(config: TracingConfig, deps: TracingDeps): Promise<Tracing> {
  if (deps.tracerProvider !== undefined) return activeTracing(deps.tracerProvider, undefined);
  if (!config.enabled) return disabledTracing;
  const [
    { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler },
    otlp,
    res,
  ] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  const exporter = new otlp.OTLPTraceExporter({ url: config.endpoint, headers: { ...config.headers } });
  const provider = new BasicTracerProvider({
    resource: res.resourceFromAttributes({ 'service.name': config.serviceName }),
    // A request that arrives in a trace keeps its caller's decision; new traces are sampled at the ratio.
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  const endpoint = new URL(config.endpoint);
  // The collector's address without credentials a URL might carry; its headers are never logged.
  deps.logger.info(
    { endpoint: `${endpoint.origin}${endpoint.pathname}`, sampleRatio: config.sampleRatio },
    'tracing on: exporting spans over OTLP/HTTP',
  );
  return activeTracing(provider, async () => {
    await provider.forceFlush();
    await provider.shutdown();
  });
}

function activeTracing(provider: TracerProvider, shutdown: (() => Promise<void>) | undefined): Tracing {
  const tracer = provider.getTracer('gatehouse');
  const active = new AsyncLocalStorage<Context>();
  const current = () => active.getStore() ?? ROOT_CONTEXT;

  function startSpan(name: string, start?: SpanStart): Span {
    return tracer.startSpan(
      name,
      { kind: start?.kind ?? SpanKind.INTERNAL, attributes: start?.attributes, links: start?.links },
      start?.parent ?? current(),
    );
  }

  return {
    enabled: true,
    async inSpan(name, start, fn) {
      const span = startSpan(name, start);
      try {
        return await active.run(trace.setSpan(current(), span), () => fn(span));
      } catch (error) {
        markFailed(span, errorType(error));
        throw error;
      } finally {
        span.end();
      }
    },
    startSpan,
    withSpan: (span, fn) => active.run(trace.setSpan(current(), span), fn),
    activeSpan: () => trace.getSpan(current()) ?? NOOP_SPAN,
    remoteParent(carrier) {
      const context = parseTraceparent(carrier.traceparent, carrier.tracestate);
      return context === undefined ? undefined : trace.setSpanContext(ROOT_CONTEXT, context);
    },
    carrier: (span) => formatTraceparent(span.spanContext()),
    async shutdown() {
      if (shutdown !== undefined) {
        await shutdown();
        return;
      }
      const flushable = provider as TracerProvider & { forceFlush?: () => Promise<void> };
      if (typeof flushable.forceFlush === 'function') await flushable.forceFlush();
    },
  };
}
