import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * 2026-07-28 requests to an HTTP upstream that speaks the same revision are relayed as HTTP: the body and
 * MCP headers go upstream untouched (credential swapped), the status, stream framing, event ids and
 * `retry` come back as the upstream wrote them, and only the final answer is opened (for the interceptor
 * chain, and to add the `resultType` a 2025-shaped server leaves out). The upstream here is a raw
 * `node:http` server, so every byte it writes is the test's choice.
 */
const VERSION = '2026-07-28';
const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': VERSION,
  'io.modelcontextprotocol/clientCapabilities': { elicitation: {} },
};

interface Seen {
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Record<string, unknown>;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => {
      text += chunk;
    });
    request.on('end', () => resolve(text));
    request.on('error', reject);
  });
}

/** A 2026-07-28 server written by hand: each tool answers in the framing the test wants to see relayed. */
function rawUpstream(seen: Seen[], closedEarly: string[]): Server {
  return createServer(async (request, response) => {
    const text = await readBody(request);
    if (request.method !== 'POST' || text === '') {
      response.writeHead(405).end();
      return;
    }
    const body = JSON.parse(text) as Record<string, unknown> & {
      id?: number | string;
      method: string;
      params?: Record<string, unknown> & { name?: string; arguments?: Record<string, unknown> };
    };
    seen.push({ method: body.method, headers: request.headers, body });
    const { id } = body;
    const json = (status: number, message: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json', 'mcp-upstream-note': 'kept' });
      response.end(JSON.stringify(message));
    };
    if (body.method === 'server/discover') {
      return json(200, {
        jsonrpc: '2.0',
        id,
        result: {
          resultType: 'complete',
          supportedVersions: [VERSION],
          capabilities: { tools: {} },
          _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'raw', version: '1.0.0' } },
        },
      });
    }
    if (body.id === undefined) {
      response.writeHead(202).end();
      return;
    }
    if (body.method === 'subscriptions/listen') {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      const tag = { 'io.modelcontextprotocol/subscriptionId': String(id) };
      response.write(
        `data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { _meta: tag } })}\n\n`,
      );
      // Later than any request deadline of the gateway under test.
      const later = setTimeout(
        () =>
          response.write(
            `data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/tools/list_changed', params: { _meta: tag } })}\n\n`,
          ),
        1_500,
      );
      response.on('close', () => clearTimeout(later));
      return;
    }
    if (body.method === 'tools/list') {
      return json(200, {
        jsonrpc: '2.0',
        id,
        result: { tools: [{ name: 'ask', inputSchema: { type: 'object' } }] },
      });
    }
    if (body.method !== 'tools/call') {
      return json(404, { jsonrpc: '2.0', id, error: { code: -32601, message: `no method ${body.method}` } });
    }
    const name = body.params?.name;
    if (name === 'lines') {
      // Newline-delimited JSON in an application/json body: progress first, then a result without resultType.
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write(
        `${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'p1', progress: 1 } })}\n`,
      );
      setTimeout(
        () =>
          response.end(
            `${JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: 'done' }] } })}\n`,
          ),
        20,
      );
      return;
    }
    if (name === 'events') {
      response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      response.write('id: ev-1\nretry: 1500\ndata: \n\n');
      response.write(
        `id: ev-2\nevent: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'hi' } })}\n\n`,
      );
      response.end(
        `id: ev-3\nevent: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id, result: { resultType: 'complete', content: [] } })}\n\n`,
      );
      return;
    }
    if (name === 'ask') {
      const params = body.params ?? {};
      if (params.requestState === undefined) {
        return json(200, {
          jsonrpc: '2.0',
          id,
          result: {
            resultType: 'input_required',
            inputRequests: {
              who: {
                method: 'elicitation/create',
                params: { message: 'Name?', requestedSchema: { type: 'object', properties: {} } },
              },
            },
            requestState: 'opaque.state+/=',
          },
        });
      }
      return json(200, {
        jsonrpc: '2.0',
        id,
        result: {
          resultType: 'complete',
          content: [
            {
              type: 'text',
              text: JSON.stringify({ state: params.requestState, inputs: params.inputResponses }),
            },
          ],
        },
      });
    }
    if (name === 'refused') {
      response.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
      return;
    }
    if (name === 'garbage') {
      response.writeHead(200, { 'content-type': 'text/html' }).end('<html>not mcp</html>');
      return;
    }
    if (name === 'hang') {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('id: h-1\ndata: \n\n');
      response.on('close', () => {
        if (!response.writableFinished) closedEarly.push(String(id));
      });
      return;
    }
    json(200, { jsonrpc: '2.0', id, error: { code: -32602, message: 'unknown tool' } });
  });
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
}

describe('stateless requests relayed as HTTP to an upstream of the same revision', () => {
  const seen: Seen[] = [];
  const closedEarly: string[] = [];
  let upstream: Server;
  let gw: TestGateway;
  let token: string;
  let upstreamUrl: string;

  beforeAll(async () => {
    upstream = rawUpstream(seen, closedEarly);
    const url = await listen(upstream);
    upstreamUrl = url;
    gw = await startTestGateway({
      store: { kind: 'memory' },
      upstream: { kind: 'http', url },
      diagnostics: { enabled: true },
    });
    token = await gw.token('relay-user');
  });
  afterAll(async () => {
    await gw?.close();
    upstream?.closeAllConnections();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  let nextId = 1;
  function post(method: string, params: Record<string, unknown> = {}, init: { signal?: AbortSignal } = {}) {
    const id = nextId++;
    return {
      id,
      response: fetch(gw.mcpUrl, {
        method: 'POST',
        signal: init.signal,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': VERSION,
          'mcp-method': method,
          ...(typeof params.name === 'string' && { 'mcp-name': params.name }),
          cookie: 'gatehouse-session=never-forwarded',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id, method, params: { ...params, _meta: ENVELOPE } }),
      }),
    };
  }

  it('forwards the body and MCP headers untouched, with a minted credential instead of the client token', async () => {
    const { id, response } = post('tools/call', { name: 'events', arguments: { a: 1 } });
    await (await response).text();
    const call = seen.find((entry) => entry.body.id === id);
    expect(call?.body.params).toEqual({ name: 'events', arguments: { a: 1 }, _meta: ENVELOPE });
    expect(call?.headers['mcp-method']).toBe('tools/call');
    expect(call?.headers['mcp-name']).toBe('events');
    expect(call?.headers['mcp-protocol-version']).toBe(VERSION);
    expect(call?.headers.authorization).toMatch(/^Bearer /);
    expect(call?.headers.authorization).not.toBe(`Bearer ${token}`);
    expect(call?.headers.cookie).toBeUndefined();
  });

  it('relays an SSE answer event for event: ids, retry and notifications as the upstream wrote them', async () => {
    const { id, response } = post('tools/call', { name: 'events' });
    const answer = await response;
    expect(answer.headers.get('content-type')).toBe('text/event-stream');
    const text = await answer.text();
    expect(text.startsWith('id: ev-1\nretry: 1500\ndata: \n\n')).toBe(true);
    expect(text).toContain(
      'id: ev-2\nevent: message\ndata: {"jsonrpc":"2.0","method":"notifications/message"',
    );
    const final = /id: ev-3\nevent: message\ndata: (.*)\n\n$/.exec(text);
    expect(JSON.parse(final?.[1] ?? 'null')).toEqual({
      jsonrpc: '2.0',
      id,
      result: { resultType: 'complete', content: [] },
    });
  });

  it('streams newline-delimited JSON as it comes, and adds the resultType a 2025-shaped result lacks', async () => {
    const { id, response } = post('tools/call', { name: 'lines' });
    const lines = (await (await response).text())
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines[0]).toMatchObject({ method: 'notifications/progress', params: { progressToken: 'p1' } });
    expect(lines[1]).toEqual({
      jsonrpc: '2.0',
      id,
      result: { content: [{ type: 'text', text: 'done' }], resultType: 'complete' },
    });
  });

  // req: MCP-2026-MRTR-REQUEST-STATE-OPAQUE
  it('relays input_required rounds with requestState and inputResponses untouched (a real v2 client)', async () => {
    const client = new Client(
      { name: 'mrtr', version: '1.0.0' },
      {
        capabilities: { elicitation: {} },
        versionNegotiation: { mode: { pin: VERSION } },
      },
    );
    client.setRequestHandler('elicitation/create', async () => ({
      action: 'accept',
      content: { name: 'Ada' },
    }));
    await client.connect(
      new StreamableHTTPClientTransport(gw.mcpUrl, { authProvider: { token: async () => token } }),
    );
    try {
      const result = await client.callTool({ name: 'ask', arguments: {} });
      const echoed = JSON.parse((result.content as Array<{ text: string }>)[0]?.text ?? '{}');
      expect(echoed.state).toBe('opaque.state+/=');
      expect(echoed.inputs).toEqual({ who: { action: 'accept', content: { name: 'Ada' } } });
    } finally {
      await client.close();
    }
  });

  // req: MCP-2026-METHOD-NOT-FOUND-404
  it("passes the upstream's status through: an unknown method is 404 / -32601", async () => {
    const { id, response } = post('made/up');
    const answer = await response;
    expect(answer.status).toBe(404);
    expect(answer.headers.get('mcp-upstream-note')).toBe('kept');
    expect(await answer.json()).toEqual({
      jsonrpc: '2.0',
      id,
      error: { code: -32601, message: 'no method made/up' },
    });
  });

  it('answers with the reason when the upstream refuses the gateway or answers with something that is not MCP', async () => {
    const refused = await (await post('tools/call', { name: 'refused' }).response).json();
    expect(refused.error).toMatchObject({ code: -32000, data: { reason: 'upstream_rejected' } });
    const garbage = await (await post('tools/call', { name: 'garbage' }).response).json();
    expect(garbage.error).toMatchObject({ code: -32000, data: { reason: 'upstream_invalid_response' } });
  });

  it('keeps the interceptor chain: diagnostics tools join tools/list, their calls never go upstream', async () => {
    const { response } = post('tools/list');
    const listed = await (await response).json();
    const names = (listed.result.tools as Array<{ name: string }>).map((tool) => tool.name);
    expect(names).toContain('ask');
    expect(names).toContain('gatehouse_whoami');
    expect(listed.result.resultType).toBe('complete');
    const before = seen.length;
    const { response: whoami } = post('tools/call', { name: 'gatehouse_whoami' });
    expect((await (await whoami).json()).result.content[0].text).toContain('relay-user');
    expect(seen.length).toBe(before);
  });

  it('keeps a subscriptions/listen stream open past the request deadline', async () => {
    const strict = await startTestGateway({
      store: { kind: 'memory' },
      upstream: { kind: 'http', url: upstreamUrl, requestTimeoutMs: 300 },
    });
    try {
      const response = await fetch(strict.mcpUrl, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await strict.token('listener')}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': VERSION,
          'mcp-method': 'subscriptions/listen',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 'sub-1',
          method: 'subscriptions/listen',
          params: { notifications: { toolsListChanged: true }, _meta: ENVELOPE },
        }),
      });
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      let text = '';
      while (!text.includes('list_changed')) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      expect(text).toContain('notifications/subscriptions/acknowledged');
      expect(text).toContain('notifications/tools/list_changed');
      expect(text).not.toContain('upstream_timeout');
      await reader.cancel();
    } finally {
      await strict.close();
    }
  });

  it('closes the upstream request when the client goes away mid-stream', async () => {
    const aborter = new AbortController();
    const { id, response } = post('tools/call', { name: 'hang' }, { signal: aborter.signal });
    const answer = await response;
    const reader = (answer.body as ReadableStream<Uint8Array>).getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toBe('id: h-1\ndata: \n\n');
    aborter.abort();
    await vi.waitFor(() => expect(closedEarly).toContain(String(id)), { timeout: 10_000 });
  });
});
