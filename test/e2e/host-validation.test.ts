import { randomBytes } from 'node:crypto';
import { type IncomingHttpHeaders, type IncomingMessage, request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatehouseConfigInput } from '../../src/config/schema.js';
import type { GatehouseEvent } from '../../src/ops/events.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { ACCEPT, INIT, STATELESS_META } from '../helpers/mcp-http.js';

const EVIL = 'evil.example.com';

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

interface Send {
  readonly method?: string;
  readonly path: string;
  /** The `Host` header, set by hand: `fetch` forbids it. */
  readonly host: string;
  readonly headers?: Record<string, string>;
  readonly body?: unknown;
  /** An event stream: resolve at the headers and hang up, instead of reading a body that never ends. */
  readonly stream?: boolean;
}

/** One request over a real socket to the gateway's port, with the `Host` the test names. */
function send(gw: TestGateway, options: Send): Promise<Answer> {
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        host: '127.0.0.1',
        port: gw.port,
        method: options.method ?? 'GET',
        path: options.path,
        headers: {
          host: options.host,
          ...(body !== undefined && { 'content-type': 'application/json' }),
          ...options.headers,
        },
      },
      (incoming) => {
        if (options.stream === true && incoming.statusCode === 200) {
          resolve({ status: 200, headers: incoming.headers, body: '' });
          incoming.destroy();
          return;
        }
        readAll(incoming).then(
          (text) => resolve({ status: incoming.statusCode ?? 0, headers: incoming.headers, body: text }),
          reject,
        );
      },
    );
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

function readAll(incoming: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    incoming.setEncoding('utf8');
    incoming.on('data', (chunk: string) => {
      text += chunk;
    });
    incoming.on('end', () => resolve(text));
    incoming.on('error', reject);
  });
}

/** A WebSocket upgrade by hand: `upgraded` when the gateway switches protocols, else its HTTP answer. */
function upgrade(gw: TestGateway, host: string, token: string): Promise<'upgraded' | Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = request({
      host: '127.0.0.1',
      port: gw.port,
      path: gw.gateway.config.websocket.path,
      headers: {
        host,
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        'sec-websocket-protocol': 'mcp',
        authorization: `Bearer ${token}`,
      },
    });
    outgoing.on('upgrade', (_incoming, socket) => {
      socket.destroy();
      resolve('upgraded');
    });
    outgoing.on('response', (incoming) => {
      readAll(incoming).then(
        (text) => resolve({ status: incoming.statusCode ?? 0, headers: incoming.headers, body: text }),
        reject,
      );
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

/** The MCP endpoint's answer to a bad `Host`: 403, a JSON-RPC error as the SDK's servers send, nothing echoed. */
function expectHostRefusal(answer: Answer | 'upgraded'): void {
  expect(answer).not.toBe('upgraded');
  const { status, headers, body } = answer as Answer;
  expect(status).toBe(403);
  expect(headers['www-authenticate']).toBeUndefined();
  expect(JSON.parse(body)).toMatchObject({
    jsonrpc: '2.0',
    id: null,
    error: { code: -32000, data: { code: 'ERR_HOST_FORBIDDEN' } },
  });
  expect(body).not.toContain('evil');
}

function mcpPost(
  gw: TestGateway,
  host: string,
  token: string,
  body: unknown,
  extra: Record<string, string> = {},
) {
  return send(gw, {
    method: 'POST',
    path: gw.gateway.config.server.mcpPath,
    host,
    headers: { accept: ACCEPT, authorization: `Bearer ${token}`, ...extra },
    body,
  });
}

const STATELESS_LIST = { jsonrpc: '2.0', id: 7, method: 'tools/list', params: { _meta: STATELESS_META } };
const STATELESS_HEADERS = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' };

describe('Host validation (DNS rebinding) on a loopback gateway', () => {
  let gw: TestGateway;
  let token: string;
  let good: string;
  const refusals: GatehouseEvent[] = [];

  beforeAll(async () => {
    gw = await startTestGateway();
    token = await gw.token('alice');
    good = `127.0.0.1:${gw.port}`;
    gw.gateway.events.subscribe((event) => {
      if (event.type === 'guard.refused') refusals.push(event);
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  // req: MCP-TRANSPORT-HOST
  it('refuses a 2025-era initialize with a valid token and a foreign Host, no Origin: 403 before authentication', async () => {
    const before = await gw.gateway.sessions.list({
      subject: 'alice',
      issuer: gw.gateway.urls.issuer,
      scopes: [],
      claims: {},
      expiresAt: 0,
      verifier: 'gatehouse',
    });
    expectHostRefusal(await mcpPost(gw, EVIL, token, INIT));
    expectHostRefusal(await mcpPost(gw, `${EVIL}:${gw.port}`, token, INIT));
    // A rebinding page learns nothing of a token: a bad one and none are refused alike, not with 401.
    expectHostRefusal(await mcpPost(gw, EVIL, 'not-a-jwt', INIT));
    expectHostRefusal(await send(gw, { method: 'POST', path: '/mcp', host: EVIL, body: INIT }));
    expect(
      await gw.gateway.sessions.list({
        subject: 'alice',
        issuer: gw.gateway.urls.issuer,
        scopes: [],
        claims: {},
        expiresAt: 0,
        verifier: 'gatehouse',
      }),
    ).toHaveLength(before.length);
    expect(refusals).toContainEqual(
      expect.objectContaining({ error: 'ERR_HOST_FORBIDDEN', reason: 'host_not_allowed', status: 403 }),
    );
  });

  it('serves the same initialize under every loopback name, port or not', async () => {
    for (const host of [good, `localhost:${gw.port}`, `[::1]:${gw.port}`, '127.0.0.1']) {
      const answer = await mcpPost(gw, host, token, INIT);
      expect(answer.status, host).toBe(200);
      expect(answer.headers['mcp-session-id'], host).toEqual(expect.any(String));
    }
  });

  it('refuses a stateless (2026-07-28) request with a foreign Host, and serves it with the right one', async () => {
    expectHostRefusal(await mcpPost(gw, EVIL, token, STATELESS_LIST, STATELESS_HEADERS));
    const served = await mcpPost(gw, good, token, STATELESS_LIST, STATELESS_HEADERS);
    expect(served.status).toBe(200);
    expect(served.body).toContain('"tools"');
  });

  it('refuses GET and DELETE on a session with a foreign Host; the session stays, and serves the right Host', async () => {
    const opened = await mcpPost(gw, good, token, INIT);
    const sessionId = opened.headers['mcp-session-id'] as string;
    const inSession = {
      authorization: `Bearer ${token}`,
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-11-25',
    };
    await mcpPost(gw, good, token, { jsonrpc: '2.0', method: 'notifications/initialized' }, inSession);

    const getStream = (host: string) =>
      send(gw, { path: '/mcp', host, headers: { ...inSession, accept: 'text/event-stream' }, stream: true });
    expectHostRefusal(await getStream(EVIL));
    expectHostRefusal(await send(gw, { method: 'DELETE', path: '/mcp', host: EVIL, headers: inSession }));
    const stream = await getStream(good);
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toContain('text/event-stream');
    const deleted = await send(gw, { method: 'DELETE', path: '/mcp', host: good, headers: inSession });
    expect(deleted.status).toBeLessThan(300);
  });

  it('refuses a WebSocket upgrade with a valid token and a foreign Host with 403, and upgrades with the right one', async () => {
    const refused = await upgrade(gw, EVIL, token);
    expectHostRefusal(refused);
    expect(refusals).toContainEqual(
      expect.objectContaining({ error: 'ERR_HOST_FORBIDDEN', transport: 'websocket' }),
    );
    expect(await upgrade(gw, good, token)).toBe('upgraded');
  });

  it('refuses legacy SSE (the stream and its messages) with a foreign Host, and serves the right one', async () => {
    const auth = { authorization: `Bearer ${token}`, accept: 'text/event-stream' };
    expectHostRefusal(await send(gw, { path: '/sse', host: EVIL, headers: auth, stream: true }));

    // The right Host opens the stream; its first event names the message endpoint.
    const stream = await new Promise<{ endpoint: string; close: () => void }>((resolve, reject) => {
      const outgoing = request(
        { host: '127.0.0.1', port: gw.port, path: '/sse', headers: { ...auth, host: good } },
        (incoming) => {
          if (incoming.statusCode !== 200) reject(new Error(`GET /sse answered ${incoming.statusCode}`));
          let text = '';
          incoming.setEncoding('utf8');
          incoming.on('data', (chunk: string) => {
            text += chunk;
            const endpoint = /event: endpoint\ndata: (.*)\n/.exec(text)?.[1];
            if (endpoint !== undefined) resolve({ endpoint, close: () => incoming.destroy() });
          });
        },
      );
      outgoing.on('error', reject);
      outgoing.end();
    });
    const message = (host: string) =>
      send(gw, {
        method: 'POST',
        path: stream.endpoint,
        host,
        headers: { authorization: `Bearer ${token}` },
        body: INIT,
      });
    try {
      expectHostRefusal(await message(EVIL));
      expect((await message(good)).status).toBe(202);
    } finally {
      stream.close();
    }
  });

  it('guards every other route too, but answers the health checks whatever the Host (probes use an IP)', async () => {
    for (const path of [
      '/',
      '/.well-known/oauth-protected-resource/mcp',
      '/.well-known/oauth-authorization-server',
      '/authorize',
    ]) {
      const refused = await send(gw, { path, host: EVIL, headers: { accept: 'text/html' } });
      expect(refused.status, path).toBe(403);
      expect(JSON.parse(refused.body).error.data.code, path).toBe('ERR_HOST_FORBIDDEN');
      expect((await send(gw, { path, host: good })).status, path).not.toBe(403);
    }
    expect((await send(gw, { path: '/healthz', host: EVIL })).status).toBe(200);
    expect((await send(gw, { path: '/readyz', host: '10.1.2.3:8787' })).status).toBe(200);
  });

  it('answers 400 to a request without a Host (HTTP/1.1 requires one; HTTP/1.0 gets the same)', async () => {
    for (const version of ['1.1', '1.0']) {
      const head = await new Promise<string>((resolve, reject) => {
        const socket = connect(gw.port, '127.0.0.1', () => {
          socket.write(
            `GET /.well-known/oauth-protected-resource HTTP/${version}\r\nconnection: close\r\n\r\n`,
          );
        });
        let text = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => {
          text += chunk;
        });
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
      expect(head, version).toMatch(/^HTTP\/1\.[01] 400 /);
    }
    expect(refusals).toContainEqual(
      expect.objectContaining({ error: 'ERR_BAD_REQUEST', reason: 'missing_host' }),
    );
  });
});

describe('Host validation with a public URL and allowedHosts', () => {
  const gateways: TestGateway[] = [];
  async function gateway(input: GatehouseConfigInput): Promise<TestGateway> {
    const gw = await startTestGateway(input);
    gateways.push(gw);
    return gw;
  }
  afterAll(async () => {
    await Promise.all(gateways.map((gw) => gw.close()));
  });

  it('allowedHosts lets an extra name in, and only that one', async () => {
    const gw = await gateway({ server: { allowedHosts: ['MCP.Internal.Example'] } });
    const token = await gw.token('alice');
    expect((await mcpPost(gw, `mcp.internal.example:${gw.port}`, token, INIT)).status).toBe(200);
    expect((await mcpPost(gw, `localhost:${gw.port}`, token, INIT)).status).toBe(200);
    expectHostRefusal(await mcpPost(gw, 'other.internal.example', token, INIT));
  });

  it('a non-loopback public URL refuses localhost and 127.0.0.1, serves its own name; health checks by IP still pass', async () => {
    const gw = await gateway({ server: { publicUrl: 'http://mcp.example.test' } });
    const token = await gw.token('alice');
    expect((await mcpPost(gw, 'mcp.example.test', token, INIT)).status).toBe(200);
    expect((await mcpPost(gw, `MCP.example.test:${gw.port}`, token, INIT)).status).toBe(200);
    for (const host of [`localhost:${gw.port}`, `127.0.0.1:${gw.port}`, `[::1]:${gw.port}`]) {
      expect((await mcpPost(gw, host, token, INIT)).status, host).toBe(403);
    }
    expect((await upgrade(gw, `localhost:${gw.port}`, token)) as Answer).toMatchObject({ status: 403 });
    expect((await send(gw, { path: '/healthz', host: `127.0.0.1:${gw.port}` })).status).toBe(200);
    // Metrics without a bearer token rely on where they are reached from: checked like any route.
    expect((await send(gw, { path: '/metrics', host: `127.0.0.1:${gw.port}` })).status).toBe(403);
  });

  it('metrics behind their own bearer token are exempt (Prometheus scrapes by IP; a page cannot send the token)', async () => {
    const bearerToken = 'scrape-token-0123456789';
    const gw = await gateway({ server: { publicUrl: 'http://mcp.example.test' }, metrics: { bearerToken } });
    const scrape = (authorization?: string) =>
      send(gw, {
        path: '/metrics',
        host: `10.0.0.7:${gw.port}`,
        headers: authorization === undefined ? {} : { authorization },
      });
    expect((await scrape(`Bearer ${bearerToken}`)).status).toBe(200);
    expect((await scrape()).status).toBe(401);
  });

  it('never believes X-Forwarded-Host, not even from a trusted proxy: a page can set it on a same-origin request', async () => {
    const gw = await gateway({ server: { trustedProxies: ['127.0.0.1'] } });
    const token = await gw.token('alice');
    expectHostRefusal(await mcpPost(gw, EVIL, token, INIT, { 'x-forwarded-host': `127.0.0.1:${gw.port}` }));
  });
});
