import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../src/identity/principal.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { text } from '../helpers/mcp.js';
import { eventually, isAlive } from '../helpers/wait.js';

const crashy = fileURLToPath(new URL('../fixtures/crashy-server.ts', import.meta.url));

interface Who {
  userId: string;
  sessionId: string | null;
  pid: number;
}

function sseUrl(gw: TestGateway): URL {
  return new URL('/sse', gw.gateway.urls.publicUrl);
}

/** The SDK v1 SSE client (2024-11-05 transport), authenticated with a bearer token on the GET and every POST. */
async function sseClient(gw: TestGateway, token: string): Promise<Client> {
  const client = new Client({ name: 'legacy-sse-test', version: '1.0.0' });
  await client.connect(
    new SSEClientTransport(sseUrl(gw), { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
  );
  return client;
}

async function whoami(client: Client): Promise<Who> {
  return JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} }))) as Who;
}

/** Reads server-sent events off a raw response body, one `{ event, data }` at a time. */
function sseReader(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let comments = 0;
  return {
    reader,
    /** Comment lines seen so far (keep-alives). */
    comments: () => comments,
    async next(): Promise<{ event: string; data: string } | undefined> {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.startsWith(':')) {
            comments++;
            continue;
          }
          const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
          const data = [...block.matchAll(/^data: (.*)$/gm)].map((m) => m[1]).join('\n');
          return { event, data };
        }
        const { done, value } = await reader.read();
        if (done) return undefined;
        buffer += decoder.decode(value, { stream: true });
      }
    },
  };
}

function post(gw: TestGateway, path: string, token: string | undefined, body: unknown, headers = {}) {
  return fetch(new URL(path, gw.gateway.urls.publicUrl), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function principalOf(gw: TestGateway, token: string): Promise<Principal> {
  return (await gw.gateway.verification.verify(token)).principal;
}

const toolsCall = (id: number, name: string, args: Record<string, unknown>) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args },
});

describe('legacy HTTP+SSE (2024-11-05) through the gateway to the stdio demo', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ store: { kind: 'memory' }, sessions: { maxPerUser: 2 } });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('the SDK SSE client completes a session: initialize, list tools, whoami, notes', async () => {
    const token = await gw.token('alice', { email: 'alice@example.test', scope: 'notes' });
    const client = await sseClient(gw, token);
    expect(client.getServerVersion()?.name).toBe('gatehouse-demo-notes');
    const tools = await client.listTools();
    expect(tools.tools.map((tool) => tool.name)).toEqual(expect.arrayContaining(['whoami', 'notes_add']));
    const who = await whoami(client);
    expect(who).toMatchObject({ userId: 'alice', email: 'alice@example.test', scopes: ['notes'] });
    const [session] = await gw.gateway.sessions.list(await principalOf(gw, token));
    expect(session).toMatchObject({ id: who.sessionId, kind: 'legacy-sse' });
    await client.callTool({ name: 'notes_add', arguments: { text: 'alice via sse' } });
    expect(text(await client.callTool({ name: 'notes_list', arguments: {} }))).toContain('alice via sse');
    await client.close();
  });

  // req: MCP-LEGACY-SSE-ENDPOINT-EVENT
  it('announces the message endpoint as an absolute path in the first event', async () => {
    const token = await gw.token('erin');
    const response = await fetch(sseUrl(gw), {
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const events = sseReader(response.body as ReadableStream<Uint8Array>);
    const first = await events.next();
    expect(first?.event).toBe('endpoint');
    expect(first?.data).toMatch(/^\/messages\?sessionId=[A-Za-z0-9_-]{43}$/);
    await events.reader.cancel();
    const principal = await principalOf(gw, token);
    await eventually(async () => (await gw.gateway.sessions.list(principal)).length === 0);
  });

  it('is unknown to the Streamable HTTP endpoint: a legacy session id there is a 404, even for its owner', async () => {
    const token = await gw.token('frank');
    const response = await fetch(sseUrl(gw), {
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    });
    const events = sseReader(response.body as ReadableStream<Uint8Array>);
    const first = await events.next();
    const sessionId = new URL(first?.data ?? '', 'http://x').searchParams.get('sessionId') as string;
    for (const method of ['GET', 'DELETE'] as const) {
      const other = await fetch(gw.mcpUrl, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          'mcp-session-id': sessionId,
          accept: 'text/event-stream',
        },
      });
      expect(other.status).toBe(404);
    }
    // The legacy stream is untouched: still this user's live session.
    const principal = await principalOf(gw, token);
    expect((await gw.gateway.sessions.list(principal)).map((session) => session.id)).toEqual([sessionId]);
    await events.reader.cancel();
  });

  // req: MCP-SECURITY-SESSION-BINDING
  it("refuses another user's token on a session with the unknown-session 404; nothing reaches the upstream", async () => {
    const aliceToken = await gw.token('alice');
    const alice = await sseClient(gw, aliceToken);
    const { sessionId } = await whoami(alice);
    const bobToken = await gw.token('bob');
    const stolen = await post(
      gw,
      `/messages?sessionId=${sessionId}`,
      bobToken,
      toolsCall(99, 'notes_add', { text: 'planted by bob' }),
    );
    const unknown = await post(
      gw,
      '/messages?sessionId=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      bobToken,
      toolsCall(99, 'notes_add', { text: 'planted by bob' }),
    );
    expect(stolen.status).toBe(404);
    expect(unknown.status).toBe(404);
    const stolenBody = await stolen.json();
    expect(stolenBody.error.data.code).toBe('ERR_SESSION_NOT_FOUND');
    expect(stolenBody).toEqual(await unknown.json());
    // Had the message been forwarded, alice's upstream (which acts as alice) would have stored it.
    expect(text(await alice.callTool({ name: 'notes_list', arguments: {} }))).not.toContain('planted by bob');
    expect((await whoami(alice)).userId).toBe('alice');
    await alice.close();
  });

  // req: MCP-AUTH-WWW-AUTHENTICATE-RESOURCE-METADATA, MCP-SECURITY-SESSION-NOT-AUTH
  it('answers 401 with the resource_metadata challenge on GET and POST without a token', async () => {
    const challenge = `resource_metadata="${gw.gateway.urls.resourceMetadataUrl}"`;
    const get = await fetch(sseUrl(gw));
    expect(get.status).toBe(401);
    expect(get.headers.get('www-authenticate')).toContain(challenge);
    const noToken = await post(gw, '/messages?sessionId=whatever', undefined, {
      jsonrpc: '2.0',
      method: 'x',
    });
    expect(noToken.status).toBe(401);
    expect(noToken.headers.get('www-authenticate')).toContain(challenge);
    const forged = await fetch(sseUrl(gw), { headers: { authorization: 'Bearer not.a.jwt' } });
    expect(forged.status).toBe(401);
    expect(forged.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  // req: MCP-LEGACY-SSE-MESSAGE-EVENT, MCP-TRANSPORT-SESSION-REQUIRED-400
  it('answers 404 for an unknown session, 400 without one, and applies the body rules', async () => {
    const token = await gw.token('frank');
    const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };
    expect((await post(gw, '/messages?sessionId=nope', token, ping)).status).toBe(404);
    const missing = await post(gw, '/messages', token, ping);
    expect(missing.status).toBe(400);
    expect((await missing.json()).error.data.code).toBe('ERR_SESSION_REQUIRED');

    const response = await fetch(sseUrl(gw), { headers: { authorization: `Bearer ${token}` } });
    const events = sseReader(response.body as ReadableStream<Uint8Array>);
    const endpoint = (await events.next())?.data as string;
    const tooLarge = await post(gw, endpoint, token, 'x'.repeat(gw.gateway.config.server.maxBodyBytes + 1));
    expect(tooLarge.status).toBe(413);
    expect((await post(gw, endpoint, token, '{not json')).status).toBe(400);
    const notRpc = await post(gw, endpoint, token, { hello: 'world' });
    expect(notRpc.status).toBe(400);
    expect((await notRpc.json()).error.code).toBe(-32600);
    expect((await post(gw, endpoint, token, ping, { 'content-type': 'text/plain' })).status).toBe(415);
    const accepted = await post(gw, endpoint, token, ping);
    expect(accepted.status).toBe(202);
    const pong = await events.next();
    expect(pong?.event).toBe('message');
    expect(JSON.parse(pong?.data as string)).toEqual({ jsonrpc: '2.0', id: 1, result: {} });
    await events.reader.cancel();
  });

  // req: MCP-TRANSPORT-ORIGIN
  it('refuses a browser Origin that is not allowed, on both endpoints', async () => {
    const token = await gw.token('alice');
    const get = await fetch(sseUrl(gw), {
      headers: { authorization: `Bearer ${token}`, origin: 'https://evil.example' },
    });
    expect(get.status).toBe(403);
    const message = await post(gw, '/messages?sessionId=x', token, {}, { origin: 'https://evil.example' });
    expect(message.status).toBe(403);
  });

  it('closing the client ends the session and its upstream child exits', async () => {
    const token = await gw.token('grace');
    const client = await sseClient(gw, token);
    const who = await whoami(client);
    expect(isAlive(who.pid)).toBe(true);
    await client.close();
    await eventually(() => !isAlive(who.pid));
    const principal = await principalOf(gw, token);
    expect(await gw.gateway.sessions.list(principal)).toEqual([]);
    const after = await post(gw, `/messages?sessionId=${who.sessionId}`, token, {
      jsonrpc: '2.0',
      id: 1,
      method: 'ping',
    });
    expect(after.status).toBe(404);
  });

  it('counts streams against sessions.maxPerUser', async () => {
    const token = await gw.token('heidi');
    const first = await sseClient(gw, token);
    const second = await sseClient(gw, token);
    const third = await fetch(sseUrl(gw), { headers: { authorization: `Bearer ${token}` } });
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).not.toBeNull();
    expect((await third.json()).error.data.code).toBe('ERR_SESSION_LIMIT');
    await first.close();
    await eventually(async () => (await gw.gateway.sessions.list(await principalOf(gw, token))).length < 2);
    const again = await sseClient(gw, token);
    expect((await whoami(again)).userId).toBe('heidi');
    await again.close();
    await second.close();
  });

  it('keeps two users isolated when they work at the same time', async () => {
    const [alice, bob] = await Promise.all([
      gw.token('ivan').then((token) => sseClient(gw, token)),
      gw.token('judy').then((token) => sseClient(gw, token)),
    ]);
    await Promise.all([
      alice.callTool({ name: 'notes_add', arguments: { text: 'ivan only' } }),
      bob.callTool({ name: 'notes_add', arguments: { text: 'judy only' } }),
    ]);
    const [ivanWho, judyWho, ivanNotes, judyNotes] = await Promise.all([
      whoami(alice),
      whoami(bob),
      alice.callTool({ name: 'notes_list', arguments: {} }).then(text),
      bob.callTool({ name: 'notes_list', arguments: {} }).then(text),
    ]);
    expect(ivanWho.userId).toBe('ivan');
    expect(judyWho.userId).toBe('judy');
    expect(ivanWho.pid).not.toBe(judyWho.pid);
    expect(ivanWho.sessionId).not.toBe(judyWho.sessionId);
    expect(ivanNotes).toContain('ivan only');
    expect(ivanNotes).not.toContain('judy only');
    expect(judyNotes).toContain('judy only');
    expect(judyNotes).not.toContain('ivan only');
    await Promise.all([alice.close(), bob.close()]);
  });
});

describe('legacy HTTP+SSE stream lifetime', () => {
  const open: TestGateway[] = [];
  afterEach(async () => {
    for (const gw of open.splice(0)) await gw.close();
  });

  it('keeps a connected stream alive past the idle timeout, then closes it and reaps the child at expiry', async () => {
    const idleTimeoutMs = 800;
    // Room for the child's start on a loaded machine before the last request, and still more than two idle
    // timeouts of silence after it.
    const absoluteLifetimeMs = 9000;
    const gw = await startTestGateway({
      store: { kind: 'memory' },
      sessions: { idleTimeoutMs, absoluteLifetimeMs, sweepIntervalMs: 50 },
      legacySse: { keepAliveMs: 100 },
    });
    open.push(gw);
    const token = await gw.token('alice');
    const opened = Date.now();
    const response = await fetch(sseUrl(gw), { headers: { authorization: `Bearer ${token}` } });
    const events = sseReader(response.body as ReadableStream<Uint8Array>);
    const endpoint = (await events.next())?.data as string;
    const init = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    };
    expect((await post(gw, endpoint, token, init)).status).toBe(202);
    expect((await events.next())?.event).toBe('message');
    await post(gw, endpoint, token, { jsonrpc: '2.0', method: 'notifications/initialized' });
    await post(gw, endpoint, token, toolsCall(2, 'whoami', {}));
    const who = JSON.parse(text(JSON.parse((await events.next())?.data as string).result)) as Who;
    expect(isAlive(who.pid)).toBe(true);
    const lastRequest = Date.now();
    // No request for many idle timeouts: the open stream keeps its session, until the absolute lifetime
    // runs out and the sweeper ends it, which ends the stream.
    expect(await events.next()).toBeUndefined();
    const ended = Date.now();
    expect(ended - opened).toBeGreaterThanOrEqual(absoluteLifetimeMs - 100);
    expect(ended - lastRequest).toBeGreaterThan(2 * idleTimeoutMs);
    expect(events.comments()).toBeGreaterThan(10);
    await eventually(() => !isAlive(who.pid));
    expect(gw.gateway.legacySse?.stats().streams).toBe(0);
  });

  it('turns an upstream crash into a JSON-RPC error for the pending request and ends the session', async () => {
    const gw = await startTestGateway({
      store: { kind: 'memory' },
      upstream: { kind: 'stdio', command: process.execPath, args: ['--import', 'tsx', crashy] },
    });
    open.push(gw);
    const token = await gw.token('alice');
    const principal = await principalOf(gw, token);
    const client = await sseClient(gw, token);
    const [session] = await gw.gateway.sessions.list(principal);
    expect(session?.kind).toBe('legacy-sse');
    const crashed = await client.callTool({ name: 'crash', arguments: {} }).then(
      () => 'answered',
      (error: unknown) => error,
    );
    expect(crashed).toBeInstanceOf(Error);
    expect((crashed as { code?: number }).code).toBe(-32000);
    // The crashed session is over (the client's EventSource may already have opened a fresh one).
    await eventually(async () =>
      (await gw.gateway.sessions.list(principal)).every((s) => s.id !== session?.id),
    );
    await client.close();
    await eventually(async () => (await gw.gateway.sessions.list(principal)).length === 0);
  });

  it('serves nothing on the legacy paths when legacySse.enabled is false', async () => {
    const gw = await startTestGateway({ store: { kind: 'memory' }, legacySse: { enabled: false } });
    open.push(gw);
    expect(gw.gateway.legacySse).toBeUndefined();
    const token = await gw.token('alice');
    expect((await fetch(sseUrl(gw), { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
    expect((await post(gw, '/messages?sessionId=x', token, { jsonrpc: '2.0', method: 'x' })).status).toBe(
      404,
    );
  });

  it('closes a stream whose reader falls behind instead of buffering without bound', async () => {
    const maxQueuedBytes = 16 * 1024;
    const gw = await startTestGateway({ store: { kind: 'memory' }, legacySse: { maxQueuedBytes } });
    open.push(gw);
    const legacy = gw.gateway.legacySse;
    if (legacy === undefined) throw new Error('legacy SSE disabled');
    const token = await gw.token('alice');
    // In-process: the response body is read only as far as this test chooses, like a stalled client.
    const response = await gw.gateway.app.request('/sse', { headers: { authorization: `Bearer ${token}` } });
    const events = sseReader(response.body as ReadableStream<Uint8Array>);
    const endpoint = (await events.next())?.data as string;
    const send = (message: unknown) =>
      gw.gateway.app.request(endpoint, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(message),
      });
    const init = {
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    };
    expect((await send(init)).status).toBe(202);
    await send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    await send(toolsCall(1, 'whoami', {}));
    // The reader stops here; every answer from now on waits in the gateway.
    let whoEvent = await events.next();
    while (whoEvent !== undefined && JSON.parse(whoEvent.data).id !== 1) whoEvent = await events.next();
    const who = JSON.parse(text(JSON.parse(whoEvent?.data as string).result)) as Who;

    let peak = 0;
    let id = 2;
    const deadline = Date.now() + 20_000;
    while (legacy.stats().streams > 0 && Date.now() < deadline) {
      await send({ jsonrpc: '2.0', id: id++, method: 'tools/list' });
      await new Promise((resolve) => setTimeout(resolve, 5));
      peak = Math.max(peak, legacy.stats().queuedBytes);
    }
    expect(legacy.stats()).toEqual({ streams: 0, queuedBytes: 0 });
    // Never more than the cap plus the one answer that crossed it (a tools/list answer is a few KiB).
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(maxQueuedBytes + 8 * 1024);
    await expect(events.reader.read()).rejects.toThrow();
    expect((await send({ jsonrpc: '2.0', id: 0, method: 'ping' })).status).toBe(404);
    await eventually(() => !isAlive(who.pid));
  });
});
