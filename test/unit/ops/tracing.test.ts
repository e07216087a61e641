import type { JSONRPCRequest } from '@modelcontextprotocol/server';
import { createTraceState, SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import type { CallContext } from '../../../src/bridge/interceptors.js';
import { traceRequest } from '../../../src/bridge/request-trace.js';
import { configSchema } from '../../../src/config/schema.js';
import { createEventBus } from '../../../src/ops/events.js';
import { silentLogger } from '../../../src/ops/logger.js';
import { traceStores } from '../../../src/ops/traced-stores.js';
import {
  createTracing,
  disabledTracing,
  errorType,
  formatTraceparent,
  parseTraceparent,
  subscribeTracing,
  type Tracing,
  withTraceHeaders,
} from '../../../src/ops/tracing.js';
import { createMemoryStores } from '../../../src/stores/memory/index.js';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const SPAN_ID = 'b7ad6b7169203331';
const VALID = `00-${TRACE_ID}-${SPAN_ID}-01`;

function recording(): {
  tracing: Promise<Tracing>;
  exporter: InMemorySpanExporter;
  provider: BasicTracerProvider;
} {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracing = createTracing(configSchema.parse({}).tracing, {
    tracerProvider: provider,
    logger: silentLogger,
  });
  return { tracing, exporter, provider };
}

describe('parseTraceparent (W3C Trace Context §3.2)', () => {
  it('reads a valid version-00 traceparent as a remote parent', () => {
    expect(parseTraceparent(VALID)).toEqual({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
    });
    expect(parseTraceparent(`00-${TRACE_ID}-${SPAN_ID}-00`)?.traceFlags).toBe(TraceFlags.NONE);
  });

  it.each([
    ['absent', undefined],
    ['not a string', 42],
    ['empty', ''],
    ['version ff', `ff-${TRACE_ID}-${SPAN_ID}-01`],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${SPAN_ID}-01`],
    ['all-zero parent id', `00-${TRACE_ID}-${'0'.repeat(16)}-01`],
    ['upper-case hex', `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`],
    ['short trace id', `00-${TRACE_ID.slice(1)}-${SPAN_ID}-01`],
    ['version 00 with a suffix', `${VALID}-extra`],
    ['too long', `${VALID}${'-x'.repeat(200)}`],
  ])('refuses a traceparent that is %s', (_case, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it('accepts a later version with more fields (forward compatibility)', () => {
    expect(parseTraceparent(`01-${TRACE_ID}-${SPAN_ID}-01-future`)?.spanId).toBe(SPAN_ID);
  });

  it('keeps a tracestate, and drops an oversized one without dropping the traceparent', () => {
    expect(parseTraceparent(VALID, 'congo=t61rcWkgMzE')?.traceState?.get('congo')).toBe('t61rcWkgMzE');
    const huge = parseTraceparent(VALID, `a=${'b'.repeat(600)}`);
    expect(huge?.spanId).toBe(SPAN_ID);
    expect(huge?.traceState).toBeUndefined();
  });
});

describe('formatTraceparent', () => {
  it('writes what parseTraceparent reads, tracestate included', () => {
    const context = parseTraceparent(VALID, 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
    expect(context).toBeDefined();
    expect(formatTraceparent(context as NonNullable<typeof context>)).toEqual({
      traceparent: VALID,
      tracestate: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE',
    });
  });

  it('gives nothing for an invalid context, and no tracestate for an empty one', () => {
    expect(formatTraceparent({ traceId: '0'.repeat(32), spanId: SPAN_ID, traceFlags: 1 })).toBeUndefined();
    expect(
      formatTraceparent({
        traceId: TRACE_ID,
        spanId: SPAN_ID,
        traceFlags: 0,
        traceState: createTraceState(''),
      }),
    ).toEqual({ traceparent: `00-${TRACE_ID}-${SPAN_ID}-00` });
  });
});

describe('errorType', () => {
  it('names an error by its stable code or class, never by its message', () => {
    expect(errorType(Object.assign(new Error('secret=abc'), { code: 'ERR_STORE_UNAVAILABLE' }))).toBe(
      'ERR_STORE_UNAVAILABLE',
    );
    expect(errorType(new TypeError('token abc'))).toBe('TypeError');
    expect(errorType('connection_closed')).toBe('connection_closed');
    expect(errorType(null)).toBe('Error');
  });
});

describe('disabled tracing', () => {
  it('is what an unconfigured gateway gets, and passes everything through', async () => {
    const tracing = await createTracing(configSchema.parse({}).tracing, { logger: silentLogger });
    expect(tracing).toBe(disabledTracing);
    expect(await tracing.inSpan('x', undefined, async (span) => span.isRecording())).toBe(false);
    expect(tracing.carrier(tracing.activeSpan())).toBeUndefined();
    expect(tracing.remoteParent({ traceparent: VALID })).toBeUndefined();
    const headers = { 'x-a': '1' };
    expect(withTraceHeaders(tracing, headers)).toBe(headers);
  });
});

describe('active tracing', () => {
  const { tracing: pending, exporter, provider } = recording();
  afterEach(() => exporter.reset());

  it('makes a span the parent of what starts inside it, and of the headers sent inside it', async () => {
    const tracing = await pending;
    let headers: Headers | undefined;
    await tracing.inSpan('outer', { parent: tracing.remoteParent({ traceparent: VALID }) }, async () => {
      await tracing.inSpan('inner', undefined, async () => {
        headers = new Headers(withTraceHeaders(tracing, { 'x-a': '1' }));
      });
    });
    const [inner, outer] = exporter.getFinishedSpans();
    expect(outer?.parentSpanContext?.spanId).toBe(SPAN_ID);
    expect(inner?.parentSpanContext?.spanId).toBe(outer?.spanContext().spanId);
    expect(inner?.spanContext().traceId).toBe(TRACE_ID);
    expect(headers?.get('x-a')).toBe('1');
    expect(headers?.get('traceparent')).toBe(`00-${TRACE_ID}-${inner?.spanContext().spanId}-01`);
  });

  it('marks a failed span with the error code, and rethrows', async () => {
    const tracing = await pending;
    const failure = Object.assign(new Error('quoted input'), { code: 'ERR_X' });
    await expect(tracing.inSpan('failing', undefined, () => Promise.reject(failure))).rejects.toBe(failure);
    const [span] = exporter.getFinishedSpans();
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes['error.type']).toBe('ERR_X');
    expect(JSON.stringify(span?.attributes)).not.toContain('quoted input');
  });

  it('adds each event to the span active where it was emitted, with codes but no identities', async () => {
    const tracing = await pending;
    const events = createEventBus(silentLogger);
    const unsubscribe = subscribeTracing(events, tracing);
    const refusal = {
      type: 'guard.refused',
      error: 'invalid_token',
      status: 401,
      ip: '203.0.113.9',
      transport: 'streamable-http',
    } as const;
    events.emit(refusal);
    await tracing.inSpan('request', undefined, async () => events.emit(refusal));
    unsubscribe();
    await tracing.inSpan('later', undefined, async () => events.emit(refusal));
    const [request, later] = exporter.getFinishedSpans();
    expect(request?.events.map((event) => [event.name, event.attributes])).toEqual([
      [
        'guard.refused',
        {
          'gatehouse.error': 'invalid_token',
          'gatehouse.status': 401,
          'gatehouse.transport': 'streamable-http',
        },
      ],
    ]);
    expect(later?.events).toEqual([]);
  });

  it('flushes an injected provider on shutdown but leaves it running', async () => {
    const tracing = await pending;
    await tracing.shutdown();
    await tracing.inSpan('after', undefined, async () => undefined);
    expect(exporter.getFinishedSpans().map((span) => span.name)).toEqual(['after']);
    await provider.forceFlush();
  });
});

describe('traceStores', () => {
  const { tracing: pending, exporter } = recording();
  afterEach(() => exporter.reset());

  it('is the stores themselves while tracing is off', () => {
    const stores = createMemoryStores();
    expect(traceStores(stores, disabledTracing)).toBe(stores);
  });

  it('records one client span per port call inside a trace, and none outside', async () => {
    const tracing = await pending;
    const stores = traceStores(createMemoryStores(), tracing);
    await stores.revocations.watermark();
    expect(exporter.getFinishedSpans()).toEqual([]);
    const limiter = stores.rateLimiter({ points: 1, durationSeconds: 60, keyPrefix: 'unit' });
    await tracing.inSpan('request', undefined, async () => {
      await stores.revocations.watermark();
      await limiter.consume('k');
    });
    const spans = exporter.getFinishedSpans();
    expect(spans.map((span) => span.name)).toEqual([
      'store revocations.watermark',
      'store rateLimiter.consume',
      'request',
    ]);
    const request = spans[2];
    for (const span of spans.slice(0, 2)) {
      expect(span.kind).toBe(SpanKind.CLIENT);
      expect(span.attributes['db.system']).toBe('memory');
      expect(span.parentSpanContext?.spanId).toBe(request?.spanContext().spanId);
    }
    expect(stores.kind).toBe('memory');
    // The same wrapped port every time: no allocation per call.
    expect(stores.sessions).toBe(stores.sessions);
    expect(stores.sessions.get).toBe(stores.sessions.get);
  });

  it('marks a failing store call and passes the failure on', async () => {
    const tracing = await pending;
    // A port whose engine is down: the memory adapter with one method failing as a lost connection would.
    const stores = createMemoryStores();
    const failing = {
      ...stores.sessions,
      get: () => Promise.reject(Object.assign(new Error('x'), { code: 'ERR_DOWN' })),
    };
    const traced = traceStores({ ...stores, sessions: failing, kind: 'postgres' }, tracing);
    await expect(
      tracing.inSpan('request', undefined, () => traced.sessions.get('id', 0)),
    ).rejects.toMatchObject({
      code: 'ERR_DOWN',
    });
    const span = exporter.getFinishedSpans().find((s) => s.name === 'store sessions.get');
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes).toMatchObject({ 'db.system': 'postgresql', 'error.type': 'ERR_DOWN' });
  });
});

describe('traceRequest', () => {
  const { tracing: pending, exporter } = recording();
  afterEach(() => exporter.reset());
  const call = {
    principal: { subject: 'alice' },
    cacheHit: false,
    sessionId: 'session-1',
    transport: 'streamable-http',
  } as unknown as CallContext;
  const request = (meta?: Record<string, unknown>): JSONRPCRequest => ({
    jsonrpc: '2.0',
    id: 7,
    method: 'tools/call',
    params: { name: 'echo', arguments: { secret: 'hunter2' }, ...(meta !== undefined && { _meta: meta }) },
  });

  it('leaves the very params object untouched while tracing is off', () => {
    const message = request({ traceparent: VALID });
    const trace = traceRequest(disabledTracing, message, call, 'http');
    trace.forward();
    expect(trace.params(message.params)).toBe(message.params);
  });

  it("replaces the client's traceparent with the upstream span's and keeps the other _meta keys", async () => {
    const tracing = await pending;
    const message = request({ traceparent: VALID, tracestate: 'congo=1', progressToken: 3 });
    const trace = traceRequest(tracing, message, call, 'stdio');
    trace.forward();
    const params = trace.params(message.params);
    trace.end({ result: {} });
    const [upstream, server] = exporter.getFinishedSpans();
    expect(params?._meta).toEqual({
      progressToken: 3,
      traceparent: `00-${TRACE_ID}-${upstream?.spanContext().spanId}-01`,
      tracestate: 'congo=1',
    });
    expect(message.params?._meta?.traceparent).toBe(VALID);
    expect(server?.name).toBe('tools/call echo');
    expect(server?.parentSpanContext?.spanId).toBe(SPAN_ID);
    expect(server?.attributes).toMatchObject({
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': 'echo',
      'mcp.session.id': 'session-1',
      'jsonrpc.request.id': '7',
      'enduser.id': 'alice',
    });
    expect(JSON.stringify([server?.attributes, upstream?.attributes])).not.toContain('hunter2');
  });

  it('marks both spans failed on a JSON-RPC error answer, once', async () => {
    const tracing = await pending;
    const trace = traceRequest(tracing, request(), call, 'http');
    trace.forward();
    trace.end({ error: { code: -32001, message: 'upstream_timeout' } });
    trace.end({ result: {} });
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(2);
    for (const span of spans) {
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(span.attributes['rpc.response.status_code']).toBe('-32001');
    }
  });
});
