import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { SpanKind } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { GatehouseConfigInput } from '../../src/config/schema.js';
import { createNotesHttpApp } from '../../src/demo/http.js';
import type { GatewayDeps } from '../../src/edge/gateway.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/late-server.js';
import { text } from '../helpers/mcp.js';

/** What the upstream received: each MCP request's `traceparent` header and `params._meta`. */
interface Seen {
  readonly method: string;
  readonly header: string | null;
  readonly meta: Record<string, unknown> | undefined;
}

interface Setup {
  readonly gw: TestGateway;
  readonly seen: Seen[];
  close(): Promise<void>;
}

/** A gateway in front of the demo notes server over HTTP, which records what each request carried. */
async function startBehindGateway(input: GatehouseConfigInput = {}, deps: GatewayDeps = {}): Promise<Setup> {
  const gatewayPort = await freePort();
  const upstreamPort = await freePort();
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}/mcp`;
  const app = createNotesHttpApp({
    jwksUrl: `http://127.0.0.1:${gatewayPort}/.well-known/jwks.json`,
    issuer: `http://127.0.0.1:${gatewayPort}/`,
    audience: upstreamUrl,
  });
  const seen: Seen[] = [];
  const upstream = serve({
    hostname: '127.0.0.1',
    port: upstreamPort,
    fetch: async (request: Request) => {
      if (request.method === 'POST') {
        const body = (await request.clone().json()) as { method?: string; params?: { _meta?: never } };
        if (typeof body.method === 'string') {
          seen.push({
            method: body.method,
            header: request.headers.get('traceparent'),
            meta: body.params?._meta,
          });
        }
      }
      return app.fetch(request);
    },
  });
  const gw = await startTestGateway(
    {
      store: { kind: 'memory' },
      server: { port: gatewayPort },
      upstream: { kind: 'http', url: upstreamUrl },
      ...input,
    },
    deps,
  );
  return {
    gw,
    seen,
    async close() {
      await gw.close();
      await app.close();
      upstream.close();
    },
  };
}

async function connect(
  gw: TestGateway,
  user: string,
  era: '2025' | '2026-07-28',
  headers: Record<string, string> = {},
): Promise<Client> {
  const token = await gw.token(user);
  const client = new Client(
    { name: 'test', version: '1.0.0' },
    era === '2025' ? {} : { versionNegotiation: { mode: { pin: '2026-07-28' } } },
  );
  await client.connect(
    new StreamableHTTPClientTransport(gw.mcpUrl, {
      authProvider: { token: async () => token },
      requestInit: { headers },
    }),
  );
  return client;
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const CLIENT_TRACEPARENT = `00-${TRACE_ID}-${PARENT_ID}-01`;

/** `00-<trace>-<span>-<flags>` split into its ids. */
function ids(traceparent: unknown): { traceId: string; spanId: string } {
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/.exec(String(traceparent));
  if (match === null) throw new Error(`not a traceparent: ${String(traceparent)}`);
  return { traceId: match[1] as string, spanId: match[2] as string };
}

describe('tracing: one trace from the client through the guard, the stores and the upstream', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let traced: Setup;

  beforeAll(async () => {
    traced = await startBehindGateway({}, { tracerProvider: provider });
  });
  afterAll(async () => {
    await traced?.close();
    await provider.shutdown();
  });
  beforeEach(() => {
    exporter.reset();
    traced.seen.length = 0;
  });

  /** The finished spans of the one trace whose tool call named `tool`, once the call's spans have ended. */
  async function toolCallTrace(
    tool: string,
    httpInTrace = true,
  ): Promise<{ spans: ReadableSpan[]; server: ReadableSpan; upstream: ReadableSpan }> {
    return vi.waitFor(() => {
      const finished = exporter.getFinishedSpans();
      const named = (kind: SpanKind) =>
        finished.find((span) => span.name === `tools/call ${tool}` && span.kind === kind);
      const server = named(SpanKind.SERVER);
      const upstream = named(SpanKind.CLIENT);
      if (server === undefined || upstream === undefined) throw new Error('the tool call is not traced yet');
      const spans = finished.filter((span) => span.spanContext().traceId === server.spanContext().traceId);
      const http = httpInTrace ? spans : finished.filter((span) => span.spanContext().traceId !== TRACE_ID);
      if (!http.some((span) => span.name === 'POST /mcp')) throw new Error('the HTTP span has not ended yet');
      return { spans, server, upstream };
    });
  }

  for (const era of ['2025', '2026-07-28'] as const) {
    it(`records the request, guard, store and upstream spans of a ${era} tool call in one trace`, async () => {
      const client = await connect(traced.gw, `trace-${era}`, era);
      exporter.reset();
      traced.seen.length = 0;
      const who = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })));
      expect(who.userId).toBe(`trace-${era}`);

      const { spans, server, upstream } = await toolCallTrace('whoami');
      const traceId = server.spanContext().traceId;
      const http = spans.find((span) => span.name === 'POST /mcp' && span.kind === SpanKind.SERVER);
      const guard = spans.find((span) => span.name === 'guard admit');
      const stores = spans.filter((span) => span.name.startsWith('store '));
      expect(http).toBeDefined();
      expect(guard).toBeDefined();
      expect(stores.length).toBeGreaterThan(0);
      for (const span of [http, guard, upstream, ...stores])
        expect(span?.spanContext().traceId).toBe(traceId);

      // The guard runs inside the HTTP request's span; the MCP request's span is the upstream span's parent.
      expect(guard?.parentSpanContext?.spanId).toBe(http?.spanContext().spanId);
      expect(server.parentSpanContext?.spanId).toBe(http?.spanContext().spanId);
      expect(upstream.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
      expect(
        stores.every((span) => span.kind === SpanKind.CLIENT && span.attributes['db.system'] === 'memory'),
      ).toBe(true);

      expect(server.attributes).toMatchObject({
        'mcp.method.name': 'tools/call',
        'gen_ai.tool.name': 'whoami',
        'enduser.id': `trace-${era}`,
      });
      expect(http?.attributes['http.response.status_code']).toBe(200);
      // Tracing subscribes to the event stream: the tool call's event is in the trace, without the user.
      const toolEvent = spans.flatMap((span) => span.events).find((event) => event.name === 'tool.called');
      expect(toolEvent?.attributes).toMatchObject({
        'gatehouse.tool': 'whoami',
        'gatehouse.outcome': 'success',
      });
      expect(JSON.stringify(toolEvent?.attributes)).not.toContain(`trace-${era}`);
      if (era === '2025') expect(typeof server.attributes['mcp.session.id']).toBe('string');
      // Nothing of the client's token is recorded anywhere.
      const token = await traced.gw.token(`trace-${era}`);
      const recorded = JSON.stringify(spans.map((span) => span.attributes));
      expect(recorded).not.toContain(token.split('.')[2]);

      // The upstream saw the upstream span as its parent, in the header and in `_meta`.
      const call = traced.seen.find((request) => request.method === 'tools/call');
      expect(call).toBeDefined();
      for (const carried of [call?.header, call?.meta?.traceparent]) {
        expect(ids(carried)).toEqual({ traceId, spanId: upstream.spanContext().spanId });
      }
      await client.close();
    });
  }

  it("continues the caller's trace from its traceparent header", async () => {
    const client = await connect(traced.gw, 'header-parent', '2026-07-28', {
      traceparent: CLIENT_TRACEPARENT,
    });
    exporter.reset();
    traced.seen.length = 0;
    await client.callTool({ name: 'whoami', arguments: {} });
    const { spans, upstream } = await toolCallTrace('whoami');
    const http = spans.find((span) => span.name === 'POST /mcp');
    expect(http?.spanContext().traceId).toBe(TRACE_ID);
    expect(http?.parentSpanContext).toMatchObject({ spanId: PARENT_ID, isRemote: true });
    expect(upstream.spanContext().traceId).toBe(TRACE_ID);
    const call = traced.seen.find((request) => request.method === 'tools/call');
    expect(ids(call?.header).traceId).toBe(TRACE_ID);
    expect(ids(call?.meta?.traceparent).spanId).toBe(upstream.spanContext().spanId);
    await client.close();
  });

  for (const era of ['2025', '2026-07-28'] as const) {
    // req: MCP-META-TRACE-CONTEXT
    it(`continues the caller's trace from params._meta.traceparent (${era})`, async () => {
      const client = await connect(traced.gw, `meta-parent-${era}`, era);
      exporter.reset();
      traced.seen.length = 0;
      await client.callTool({ name: 'whoami', arguments: {}, _meta: { traceparent: CLIENT_TRACEPARENT } });
      const { server, upstream } = await toolCallTrace('whoami', false);
      expect(server.spanContext().traceId).toBe(TRACE_ID);
      expect(server.parentSpanContext).toMatchObject({ spanId: PARENT_ID, isRemote: true });
      // The HTTP request's span (its own trace: the header carried none) is linked.
      const http = exporter
        .getFinishedSpans()
        .find((span) => span.name === 'POST /mcp' && span.spanContext().traceId !== TRACE_ID);
      expect(server.links.map((link) => link.context.spanId)).toContain(http?.spanContext().spanId);
      expect(upstream.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
      // The upstream gets the gateway's span as its parent, not the client's.
      const call = traced.seen.find((request) => request.method === 'tools/call');
      expect(ids(call?.meta?.traceparent)).toEqual({
        traceId: TRACE_ID,
        spanId: upstream.spanContext().spanId,
      });
      await client.close();
    });
  }

  it('marks a refused request: the guard span fails with the refusal code', async () => {
    const response = await fetch(traced.gw.mcpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer not-a-token' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(response.status).toBe(401);
    const guard = await vi.waitFor(() => {
      const span = exporter.getFinishedSpans().find((s) => s.name === 'guard admit');
      if (span === undefined) throw new Error('no guard span yet');
      return span;
    });
    expect(guard.status.code).toBe(2);
    expect(guard.attributes['error.type']).toBe('invalid_token');
    expect(guard.events.find((event) => event.name === 'guard.refused')?.attributes).toMatchObject({
      'gatehouse.error': 'invalid_token',
      'gatehouse.status': 401,
    });
    expect(traced.seen).toEqual([]);
  });
});

describe('tracing off (the default)', () => {
  let plain: Setup;
  beforeAll(async () => {
    plain = await startBehindGateway();
  });
  afterAll(async () => {
    await plain?.close();
  });

  for (const era of ['2025', '2026-07-28'] as const) {
    // req: MCP-META-TRACE-CONTEXT
    it(`sends the upstream no traceparent and leaves _meta as the client sent it (${era})`, async () => {
      const client = await connect(plain.gw, `plain-${era}`, era);
      plain.seen.length = 0;
      await client.callTool({ name: 'whoami', arguments: {} });
      await client.callTool({ name: 'whoami', arguments: {}, _meta: { traceparent: CLIENT_TRACEPARENT } });
      const calls = plain.seen.filter((request) => request.method === 'tools/call');
      expect(calls).toHaveLength(2);
      expect(calls.map((call) => call.header)).toEqual([null, null]);
      expect(calls[0]?.meta?.traceparent).toBeUndefined();
      expect(calls[1]?.meta?.traceparent).toBe(CLIENT_TRACEPARENT);
      expect(plain.seen.every((request) => request.header === null)).toBe(true);
      await client.close();
    });
  }
});

const metaEcho = fileURLToPath(new URL('../fixtures/meta-echo-server.ts', import.meta.url));

describe('tracing a stdio upstream: the context travels in _meta', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const stdio = { kind: 'stdio' as const, command: process.execPath, args: ['--import', 'tsx', metaEcho] };
  let traced: TestGateway;
  let plain: TestGateway;

  beforeAll(async () => {
    [traced, plain] = await Promise.all([
      startTestGateway({ store: { kind: 'memory' }, upstream: stdio }, { tracerProvider: provider }),
      startTestGateway({ store: { kind: 'memory' }, upstream: stdio }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([traced?.close(), plain?.close()]);
    await provider.shutdown();
  });

  const echoed = async (client: Client, meta?: Record<string, unknown>) =>
    JSON.parse(
      text(
        await client.callTool({
          name: 'meta_echo',
          arguments: {},
          ...(meta !== undefined && { _meta: meta }),
        }),
      ),
    ) as Record<string, unknown>;

  for (const era of ['2025', '2026-07-28'] as const) {
    // req: MCP-META-TRACE-CONTEXT
    it(`puts the upstream span's traceparent in _meta, and nothing with tracing off (${era})`, async () => {
      const client = await connect(traced, `stdio-${era}`, era);
      exporter.reset();
      const meta = await echoed(client, { traceparent: CLIENT_TRACEPARENT, 'example.com/kept': 1 });
      const upstream = await vi.waitFor(() => {
        const span = exporter
          .getFinishedSpans()
          .find((s) => s.name === 'tools/call meta_echo' && s.kind === SpanKind.CLIENT);
        if (span === undefined) throw new Error('not traced yet');
        return span;
      });
      expect(ids(meta.traceparent)).toEqual({ traceId: TRACE_ID, spanId: upstream.spanContext().spanId });
      expect(meta['example.com/kept']).toBe(1);
      expect(upstream.attributes['gatehouse.upstream']).toBe('stdio');
      await client.close();

      const untraced = await connect(plain, `stdio-plain-${era}`, era);
      expect((await echoed(untraced)).traceparent).toBeUndefined();
      expect(await echoed(untraced, { traceparent: CLIENT_TRACEPARENT })).toEqual({
        traceparent: CLIENT_TRACEPARENT,
      });
      await untraced.close();
    });
  }
});

describe('tracing over OTLP/HTTP', () => {
  let collector: Server;
  const received: Array<{ path: string | undefined; headers: IncomingMessage['headers']; body: string }> = [];

  beforeAll(async () => {
    collector = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        received.push({
          path: request.url,
          headers: request.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => collector.close(resolve));
  });

  it('exports the spans to the configured collector, with its headers, when the gateway closes', async () => {
    const { port } = collector.address() as AddressInfo;
    const setup = await startBehindGateway({
      tracing: {
        enabled: true,
        endpoint: `http://127.0.0.1:${port}/v1/traces`,
        serviceName: 'gatehouse-test',
        headers: { authorization: 'Bearer collector-key' },
      },
    });
    const client = await connect(setup.gw, 'otlp-user', '2026-07-28');
    await client.callTool({ name: 'whoami', arguments: {} });
    await client.close();
    await setup.close();
    const exported = received.filter((request) => request.path === '/v1/traces');
    expect(exported.length).toBeGreaterThan(0);
    expect(exported[0]?.headers.authorization).toBe('Bearer collector-key');
    const bodies = exported.map((request) => request.body).join('\n');
    expect(bodies).toContain('tools/call whoami');
    expect(bodies).toContain('guard admit');
    expect(bodies).toContain('gatehouse-test');
    const traceparent = setup.seen.find((request) => request.method === 'tools/call')?.header;
    expect(bodies).toContain(ids(traceparent).traceId);
  });
});
