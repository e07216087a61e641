import { fileURLToPath } from 'node:url';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { WebSocketClientTransport } from '@modelcontextprotocol/sdk/client/websocket.js';
import { decodeJwt } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket as WS } from 'ws';
import type { GatehouseConfigInput } from '../../src/config/schema.js';
import { createTokenSigner } from '../../src/tokens/sign.js';
import { WS_CLOSE } from '../../src/transports/websocket.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { text } from '../helpers/mcp.js';
import { isAlive } from '../helpers/wait.js';
import { connectRaw, helloWebSocket, RawClient, type Refusal, wsUrl } from '../helpers/websocket.js';

const crashy = fileURLToPath(new URL('../fixtures/crashy-server.ts', import.meta.url));
const flood = fileURLToPath(new URL('../fixtures/flood-server.ts', import.meta.url));

async function refusal(gw: TestGateway, options: { token?: string; origin?: string } = {}): Promise<Refusal> {
  const outcome = await connectRaw(gw, options).then(
    async (client) => {
      await client.close();
      return undefined;
    },
    (error: unknown) => error,
  );
  expect(outcome).toMatchObject({ status: expect.any(Number) });
  return outcome as Refusal;
}

/** A token signed by the gateway's own key an hour ago, long expired. */
function expiredToken(gw: TestGateway, user: string): Promise<string> {
  const signer = createTokenSigner({
    keys: gw.gateway.keys,
    issuer: gw.gateway.urls.issuer,
    clock: { now: () => Date.now() - 3_600_000 },
  });
  return signer.sign({ subject: user, audience: gw.gateway.urls.resource, expiresInSeconds: 60 });
}

/** The `WWW-Authenticate` challenge the MCP endpoint answers `token` with. */
async function mcpChallenge(gw: TestGateway, token: string): Promise<string | null> {
  const response = await fetch(gw.mcpUrl, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  expect(response.status).toBe(401);
  return response.headers.get('www-authenticate');
}

// The SDK's WebSocket transport uses the global `WebSocket` (absent on Node 20) and can set no headers;
// these stand-ins are `ws` sockets that add the header, or send the hello first and keep its answer.
const originalWebSocket = (globalThis as { WebSocket?: unknown }).WebSocket;

function useGlobalWebSocket(implementation: unknown): void {
  (globalThis as { WebSocket?: unknown }).WebSocket = implementation;
}

function headerWebSocket(token: string): unknown {
  return class extends WS {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols, { headers: { authorization: `Bearer ${token}` } });
    }
  };
}

async function sdkClient(gw: TestGateway, webSocket: unknown): Promise<V1Client> {
  useGlobalWebSocket(webSocket);
  const client = new V1Client({ name: 'sdk-ws', version: '1.0.0' });
  await client.connect(new WebSocketClientTransport(new URL(wsUrl(gw))));
  return client;
}

async function startGateway(input: GatehouseConfigInput = {}): Promise<TestGateway> {
  return startTestGateway({ store: { kind: 'memory' }, ...input });
}

describe('WebSocket endpoint: MCP over WebSocket to the stdio demo', () => {
  let gw: TestGateway;
  const clients: RawClient[] = [];
  beforeAll(async () => {
    gw = await startGateway({ websocket: { helloTimeoutMs: 500 } });
  });
  afterEach(async () => {
    useGlobalWebSocket(originalWebSocket);
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => {
    await gw?.close();
  });

  async function raw(options: Parameters<typeof connectRaw>[1] = {}): Promise<RawClient> {
    const client = await connectRaw(gw, options);
    clients.push(client);
    return client;
  }

  it('a ws client authenticated by the Authorization header lists and calls tools as its user', async () => {
    const alice = await raw({ token: await gw.token('alice', { email: 'alice@example.test' }) });
    expect(alice.ws.protocol).toBe('mcp');
    await alice.initialize();
    const tools = (await alice.request('tools/list')).result as { tools: Array<{ name: string }> };
    expect(tools.tools.map((tool) => tool.name)).toEqual(expect.arrayContaining(['whoami', 'notes_list']));
    const who = await alice.whoami();
    expect(who).toMatchObject({ userId: 'alice', email: 'alice@example.test' });
    const [session] = await gw.gateway.sessions.list({
      issuer: gw.gateway.urls.issuer,
      subject: 'alice',
    } as never);
    expect(session).toMatchObject({ kind: 'websocket', id: who.sessionId });
  });

  it('a ws client authenticated by hello gets hello_ack and acts as its user', async () => {
    const bob = await raw();
    const token = await gw.token('bob');
    const ack = await bob.hello(token);
    expect(ack).toEqual({
      op: 'hello_ack',
      sub: 'bob',
      expires_at: decodeJwt(token).exp,
      session_id: expect.any(String),
    });
    await bob.initialize();
    const who = await bob.whoami();
    expect(who.userId).toBe('bob');
    expect(who.sessionId).toBe(ack.session_id);
  });

  it('the SDK WebSocket client transport, authenticated by the header, lists and calls tools', async () => {
    const client = await sdkClient(gw, headerWebSocket(await gw.token('carol')));
    const tools = await client.listTools();
    expect(tools.tools.map((tool) => tool.name)).toContain('whoami');
    const who = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })));
    expect(who.userId).toBe('carol');
    await client.callTool({ name: 'notes_add', arguments: { text: 'carol over ws' } });
    expect(text(await client.callTool({ name: 'notes_list', arguments: {} }))).toContain('carol over ws');
    await client.close();
  });

  it('the SDK WebSocket client transport, authenticated by hello (initialize pipelined behind it)', async () => {
    const acks: Array<{ sub?: string }> = [];
    const client = await sdkClient(gw, helloWebSocket(await gw.token('dave'), acks));
    const who = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })));
    expect(who.userId).toBe('dave');
    expect(acks).toEqual([
      expect.objectContaining({ op: 'hello_ack', sub: 'dave', session_id: who.sessionId }),
    ]);
    await client.close();
  });

  it('closes a connection that sends no hello with 4408 hello_timeout', async () => {
    const silent = await raw();
    expect(await silent.closed).toEqual({ code: WS_CLOSE.helloTimeout, reason: 'hello_timeout' });
  });

  it('processes no JSON-RPC message before hello: closed with 4401 authentication_required, unanswered', async () => {
    const eager = await raw();
    const answered = eager.request('tools/list').then(
      () => 'answered',
      () => 'refused',
    );
    expect(await eager.closed).toEqual({ code: WS_CLOSE.unauthenticated, reason: 'authentication_required' });
    expect(await answered).toBe('refused');
  });

  it('closes on a malformed first message (4400) and on a hello without a token (4400 malformed_hello)', async () => {
    const garbage = await raw();
    garbage.send('{not json');
    expect(await garbage.closed).toEqual({ code: WS_CLOSE.malformed, reason: 'malformed_message' });
    const tokenless = await raw();
    tokenless.send({ op: 'hello' });
    expect(await tokenless.closed).toEqual({ code: WS_CLOSE.malformed, reason: 'malformed_hello' });
    const unknown = await raw({ token: await gw.token('alice') });
    unknown.send({ op: 'subscribe' });
    expect(await unknown.closed).toEqual({ code: WS_CLOSE.malformed, reason: 'unknown_op' });
  });

  it('header: a wrong or expired token gets 401 with the MCP endpoint’s challenge, before any upgrade', async () => {
    for (const token of ['not-a-jwt', await expiredToken(gw, 'alice')]) {
      const refused = await refusal(gw, { token });
      expect(refused.status).toBe(401);
      expect(refused.headers['www-authenticate']).toBe(await mcpChallenge(gw, token));
      expect(refused.headers['www-authenticate']).toContain('resource_metadata=');
      expect(JSON.parse(refused.body)).toMatchObject({ error: 'invalid_token' });
    }
    expect(gw.gateway.websocket?.stats().open).toBe(0);
  });

  it('hello: a wrong token closes with 4401 invalid_token, an expired one with 4401 token_expired', async () => {
    const wrong = await raw();
    wrong.send({ op: 'hello', token: 'not-a-jwt' });
    expect(await wrong.closed).toEqual({ code: WS_CLOSE.unauthenticated, reason: 'invalid_token' });
    const expired = await raw();
    expired.send({ op: 'hello', token: await expiredToken(gw, 'alice') });
    expect(await expired.closed).toEqual({ code: WS_CLOSE.unauthenticated, reason: 'token_expired' });
  });

  // req: MCP-TRANSPORT-ORIGIN
  it('refuses a browser origin that is not allowed with 403 before the upgrade', async () => {
    const refused = await refusal(gw, { token: await gw.token('alice'), origin: 'https://evil.example' });
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body).error.data.code).toBe('ERR_ORIGIN_FORBIDDEN');
  });

  it('closes with 1009 a message larger than maxMessageBytes', async () => {
    const alice = await raw({ token: await gw.token('alice') });
    alice.send('x'.repeat(gw.gateway.config.server.maxBodyBytes + 1));
    expect((await alice.closed).code).toBe(WS_CLOSE.messageTooBig);
  });

  it('closes at token expiry with 4401 token_expired, unless a hello renewed it with a fresh token of the same user', async () => {
    const [short1, short2] = [
      await gw.token('erin', { expiresInSeconds: 3 }),
      await gw.token('erin', { expiresInSeconds: 3 }),
    ];
    const lapsing = await raw();
    await lapsing.hello(short1);
    const renewed = await raw({ token: short2 });
    const fresh = await gw.token('erin', { expiresInSeconds: 600 });
    const ack = await renewed.hello(fresh);
    expect(ack).toMatchObject({ op: 'hello_ack', sub: 'erin', expires_at: decodeJwt(fresh).exp });
    expect(ack.expires_at).toBeGreaterThan(decodeJwt(short2).exp as number);
    await renewed.initialize();
    const before = await renewed.whoami();
    expect(before.sessionId).toBe(ack.session_id);

    expect(await lapsing.closed).toEqual({ code: WS_CLOSE.unauthenticated, reason: 'token_expired' });
    // Both first tokens expired in the same second; the renewed socket still answers, as the same session.
    expect(await renewed.whoami()).toMatchObject({
      userId: 'erin',
      sessionId: before.sessionId,
      pid: before.pid,
    });
    expect(renewed.ws.readyState).toBe(WS.OPEN);
  });

  it('closes with 4409 a re-hello carrying another user’s token, and the other user gets nothing', async () => {
    const frank = await raw({ token: await gw.token('frank') });
    await frank.initialize();
    frank.send({ op: 'hello', token: await gw.token('mallory') });
    expect(await frank.closed).toEqual({ code: WS_CLOSE.principalMismatch, reason: 'principal_mismatch' });
    expect(
      await gw.gateway.sessions.list({ issuer: gw.gateway.urls.issuer, subject: 'mallory' } as never),
    ).toEqual([]);
  });

  // req: MCP-SECURITY-SESSION-NOT-AUTH
  it('closes with 4401 token_revoked at the next message once the connection’s token is revoked', async () => {
    const token = await gw.token('grace');
    const grace = await raw({ token });
    await grace.initialize();
    expect((await grace.whoami()).userId).toBe('grace');
    const { jti, exp } = decodeJwt(token);
    await gw.gateway.authorizationServer?.revocations.revoke({
      kind: 'jti',
      id: jti as string,
      revokedAt: Date.now(),
      expiresAt: (exp as number) * 1000,
    });
    const answered = grace.request('tools/list').then(
      () => 'answered',
      () => 'refused',
    );
    expect(await grace.closed).toEqual({ code: WS_CLOSE.unauthenticated, reason: 'token_revoked' });
    expect(await answered).toBe('refused');
  });

  it('two users send byte-identical requests at once: each is answered, as itself, from its own notes', async () => {
    const alice = await raw({ token: await gw.token('alice') });
    const bob = await raw();
    await bob.hello(await gw.token('bob'));
    const alice2 = await raw({ token: await gw.token('alice') });
    for (const client of [alice, bob, alice2]) await client.initialize();
    await alice.call('notes_add', { text: 'alice secret' });

    const whoami =
      '{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"name":"whoami","arguments":{}}}';
    const list =
      '{"jsonrpc":"2.0","id":78,"method":"tools/call","params":{"name":"notes_list","arguments":{}}}';
    const answers = (client: RawClient) =>
      Promise.all([client.next((m) => m.id === 77), client.next((m) => m.id === 78)]);
    const waiting = Promise.all([answers(alice), answers(bob), answers(alice2)] as const);
    for (const message of [whoami, list]) for (const client of [alice, bob, alice2]) client.send(message);
    const [[aliceWho, aliceList], [bobWho, bobList], [alice2Who]] = await waiting;

    expect(JSON.parse(text(aliceWho?.result)).userId).toBe('alice');
    expect(JSON.parse(text(bobWho?.result)).userId).toBe('bob');
    // No de-duplication across connections: the same user's second socket is answered too.
    expect(JSON.parse(text(alice2Who?.result)).userId).toBe('alice');
    expect(text(aliceList?.result)).toContain('alice secret');
    expect(text(bobList?.result)).not.toContain('alice secret');
  });

  it('its session id selects nothing on the MCP endpoint, even for its own user (404, socket unaffected)', async () => {
    const token = await gw.token('ian');
    const ian = await raw({ token });
    await ian.initialize();
    const { sessionId } = await ian.whoami();
    for (const method of ['GET', 'DELETE']) {
      const response = await fetch(gw.mcpUrl, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          'mcp-session-id': sessionId as string,
          accept: 'text/event-stream',
        },
      });
      expect(response.status).toBe(404);
    }
    expect((await ian.whoami()).sessionId).toBe(sessionId);
  });

  it('closing the socket ends its session and stops its upstream child', async () => {
    const henry = await raw({ token: await gw.token('henry') });
    await henry.initialize();
    const who = await henry.whoami();
    expect(isAlive(who.pid)).toBe(true);
    const principal = { issuer: gw.gateway.urls.issuer, subject: 'henry' } as never;
    expect(await gw.gateway.sessions.list(principal)).toHaveLength(1);
    await henry.close();
    await vi.waitFor(async () => {
      expect(await gw.gateway.sessions.list(principal)).toEqual([]);
      expect(isAlive(who.pid)).toBe(false);
    });
  });
});

describe('WebSocket connection limits', () => {
  const gateways: TestGateway[] = [];
  afterAll(async () => {
    await Promise.all(gateways.map((gw) => gw.close()));
  });
  async function gateway(input: GatehouseConfigInput): Promise<TestGateway> {
    const gw = await startGateway(input);
    gateways.push(gw);
    return gw;
  }

  it('counts connections against the per-user session cap: 429 before the upgrade, 4429 after hello', async () => {
    const gw = await gateway({ sessions: { maxPerUser: 2 }, websocket: { connectPerUserPerMinute: 100 } });
    const token = await gw.token('ivy');
    const first = await connectRaw(gw, { token });
    const second = await connectRaw(gw);
    await second.hello(token);

    const refused = await refusal(gw, { token });
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body).error.data.code).toBe('ERR_SESSION_LIMIT');
    const third = await connectRaw(gw);
    third.send({ op: 'hello', token });
    expect(await third.closed).toEqual({ code: WS_CLOSE.limited, reason: 'session_limit' });
    // Another user is not affected.
    const other = await connectRaw(gw, { token: await gw.token('jack') });

    await first.close();
    const principal = { issuer: gw.gateway.urls.issuer, subject: 'ivy' } as never;
    await vi.waitFor(async () => expect(await gw.gateway.sessions.list(principal)).toHaveLength(1));
    const again = await connectRaw(gw, { token });
    await again.close();
    await Promise.all([second.close(), other.close()]);
  });

  it('rate-limits connects per user (429 + Retry-After before the upgrade, 4429 after hello)', async () => {
    const gw = await gateway({ websocket: { connectPerUserPerMinute: 2 } });
    const token = await gw.token('kim');
    await (await connectRaw(gw, { token })).close();
    const viaHello = await connectRaw(gw);
    await viaHello.hello(token);
    await viaHello.close();

    const refused = await refusal(gw, { token });
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body).error.data.code).toBe('ERR_RATE_LIMITED');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    const late = await connectRaw(gw);
    late.send({ op: 'hello', token });
    expect(await late.closed).toEqual({ code: WS_CLOSE.limited, reason: 'rate_limited' });
    // The limit is the user's, not everyone's.
    await (await connectRaw(gw, { token: await gw.token('lee') })).close();
  });

  it('rate-limits upgrade requests per IP, whoever the user and whether or not they authenticate', async () => {
    const gw = await gateway({ websocket: { connectPerIpPerMinute: 3 } });
    await (await connectRaw(gw, { token: await gw.token('u1') })).close();
    await (await connectRaw(gw)).close();
    await refusal(gw, { token: 'not-a-jwt' });
    const refused = await refusal(gw, { token: await gw.token('u2') });
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body).error.data.code).toBe('ERR_RATE_LIMITED');
    expect((await refusal(gw)).status).toBe(429);
  });

  // req: MCP-AUTH-403-INSUFFICIENT-SCOPE, RFC6750-3.1-INSUFFICIENT-SCOPE
  it('refuses a token without the required scope: 403 insufficient_scope before the upgrade, 4403 after hello', async () => {
    const gw = await gateway({ auth: { requiredScopes: ['mcp'] } });
    const unscoped = await gw.token('moe', { scope: 'other' });
    const refused = await refusal(gw, { token: unscoped });
    expect(refused.status).toBe(403);
    expect(refused.headers['www-authenticate']).toContain('error="insufficient_scope"');
    const viaHello = await connectRaw(gw);
    viaHello.send({ op: 'hello', token: unscoped });
    expect(await viaHello.closed).toEqual({ code: WS_CLOSE.forbidden, reason: 'insufficient_scope' });
    const scoped = await connectRaw(gw, { token: await gw.token('moe', { scope: 'mcp' }) });
    await scoped.initialize();
    expect((await scoped.whoami()).userId).toBe('moe');
    await scoped.close();
  });
});

describe('WebSocket liveness, upstream failures and slow readers', () => {
  const gateways: TestGateway[] = [];
  afterAll(async () => {
    await Promise.all(gateways.map((gw) => gw.close()));
  });
  async function gateway(input: GatehouseConfigInput): Promise<TestGateway> {
    const gw = await startGateway(input);
    gateways.push(gw);
    return gw;
  }

  it('closes with 4500 upstream_closed when the upstream process crashes, and ends the session', async () => {
    const gw = await gateway({
      upstream: { kind: 'stdio', command: process.execPath, args: ['--import', 'tsx', crashy] },
    });
    const client = await connectRaw(gw, { token: await gw.token('nina') });
    await client.initialize();
    expect(await client.call('echo', { text: 'hi' })).toBe('hi');
    client.send({ jsonrpc: '2.0', id: 99, method: 'tools/call', params: { name: 'crash', arguments: {} } });
    expect(await client.closed).toEqual({ code: WS_CLOSE.upstreamFailed, reason: 'upstream_closed' });
    await vi.waitFor(async () =>
      expect(
        await gw.gateway.sessions.list({ issuer: gw.gateway.urls.issuer, subject: 'nina' } as never),
      ).toEqual([]),
    );
  });

  it('heartbeats: a peer that stops answering pings is disconnected, a live one is kept', async () => {
    const gw = await gateway({ websocket: { heartbeatIntervalMs: 500 } });
    const live = await connectRaw(gw, { token: await gw.token('pat') });
    const dead = new RawClient(
      new WS(wsUrl(gw), ['mcp'], {
        headers: { authorization: `Bearer ${await gw.token('quinn')}` },
        autoPong: false,
      }),
    );
    await live.initialize();
    // 1006: the gateway cut the connection without a close frame, as it does for a dead peer.
    expect((await dead.closed).code).toBe(1006);
    expect((await live.whoami()).userId).toBe('pat');
    await vi.waitFor(async () =>
      expect(
        await gw.gateway.sessions.list({ issuer: gw.gateway.urls.issuer, subject: 'quinn' } as never),
      ).toEqual([]),
    );
    await live.close();
  });

  it('closes with 4410 session_ended when its session reaches its absolute lifetime', async () => {
    const gw = await gateway({
      sessions: { absoluteLifetimeMs: 5_000, idleTimeoutMs: 5_000, sweepIntervalMs: 100 },
    });
    const sam = await connectRaw(gw, { token: await gw.token('sam') });
    await sam.initialize();
    expect(await sam.closed).toEqual({ code: WS_CLOSE.sessionEnded, reason: 'session_ended' });
  });

  it('a live but silent connection keeps its session past the idle timeout (heartbeats count as activity)', async () => {
    const gw = await gateway({
      sessions: { idleTimeoutMs: 1_000, sweepIntervalMs: 100 },
      websocket: { heartbeatIntervalMs: 100 },
    });
    const rita = await connectRaw(gw, { token: await gw.token('rita') });
    await rita.initialize();
    const principal = { issuer: gw.gateway.urls.issuer, subject: 'rita' } as never;
    const [opened] = await gw.gateway.sessions.list(principal);
    // Without a single client message, the session is seen again well past one idle timeout.
    await vi.waitFor(
      async () => {
        const [session] = await gw.gateway.sessions.list(principal);
        expect(session?.lastSeenAt).toBeGreaterThan((opened?.lastSeenAt ?? 0) + 2_000);
      },
      { timeout: 10_000, interval: 200 },
    );
    expect((await rita.whoami()).userId).toBe('rita');
    await rita.close();
  });

  /**
   * Opens a header-authenticated socket to a flooding upstream, stops reading from it (the TCP socket is
   * paused, so the kernel buffers fill and the gateway's send buffer is all that can grow), and asks for
   * `count` notifications of `bytes` each.
   */
  async function floodPausedReader(gw: TestGateway, count: number, bytes: number): Promise<RawClient> {
    const client = await connectRaw(gw, { token: await gw.token('olga') });
    await client.initialize();
    (client.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    client.send({
      jsonrpc: '2.0',
      id: 5,
      method: 'tools/call',
      params: { name: 'flood', arguments: { count, bytes } },
    });
    return client;
  }
  const resume = (client: RawClient) =>
    (client.ws as unknown as { _socket: { resume(): void } })._socket.resume();

  it('a reader that stops reading is closed with 4507 slow_consumer; the gateway never buffers past the bound', async () => {
    const maxBufferedBytes = 256 * 1024;
    const gw = await gateway({
      upstream: { kind: 'stdio', command: process.execPath, args: ['--import', 'tsx', flood] },
      websocket: { maxBufferedBytes },
    });
    const endpoint = gw.gateway.websocket;
    // 32 MiB of output: far more than the kernel's socket buffers on both ends can absorb.
    const client = await floodPausedReader(gw, 512, 64 * 1024);
    // The gateway gives up on the reader (its session ends, its upstream stops) while it still is not reading.
    await vi.waitFor(() => expect(endpoint?.stats()).toMatchObject({ open: 0, closing: 1 }), {
      timeout: 20_000,
    });
    expect(
      await gw.gateway.sessions.list({ issuer: gw.gateway.urls.issuer, subject: 'olga' } as never),
    ).toEqual([]);
    const { peakBufferedBytes } = endpoint?.stats() ?? { peakBufferedBytes: Number.NaN };
    expect(peakBufferedBytes).toBeGreaterThan(0);
    expect(peakBufferedBytes).toBeLessThanOrEqual(maxBufferedBytes);
    resume(client);
    expect(await client.closed).toEqual({ code: WS_CLOSE.slowConsumer, reason: 'slow_consumer' });
    await vi.waitFor(() => expect(endpoint?.stats()).toMatchObject({ open: 0, closing: 0 }));
  });

  it('an upstream that stops reading pushes back on the client (the gateway stops reading), then 4500 upstream_stalled', async () => {
    const maxBufferedBytes = 256 * 1024;
    const pad = 'x'.repeat(64 * 1024);
    const gw = await gateway({
      upstream: { kind: 'stdio', command: process.execPath, args: ['--import', 'tsx', flood] },
      websocket: { maxBufferedBytes, heartbeatIntervalMs: 1_000 },
    });
    const client = await connectRaw(gw, { token: await gw.token('pia') });
    await client.initialize();
    expect(await client.call('stall')).toBe('stalled');
    // 25 MiB of notifications for an upstream that reads none of them: whatever the gateway reads of
    // them stays queued, so what it queued is what it read.
    for (let i = 0; i < 400; i++)
      client.send({ jsonrpc: '2.0', method: 'notifications/pad', params: { pad } });
    expect(await client.closed).toEqual({ code: WS_CLOSE.upstreamFailed, reason: 'upstream_stalled' });
    const { peakQueuedBytes } = gw.gateway.websocket?.stats() ?? { peakQueuedBytes: Number.NaN };
    expect(peakQueuedBytes).toBeGreaterThan(maxBufferedBytes);
    // It stopped reading at the bound, past it by at most what one read of the socket had brought in.
    expect(peakQueuedBytes).toBeLessThanOrEqual(maxBufferedBytes + 256 * 1024);
  });

  it('control: without the bound the same paused reader makes the gateway buffer far more', async () => {
    const gw = await gateway({
      upstream: { kind: 'stdio', command: process.execPath, args: ['--import', 'tsx', flood] },
      websocket: { maxBufferedBytes: 256 * 1024 * 1024 },
    });
    const endpoint = gw.gateway.websocket;
    const client = await floodPausedReader(gw, 512, 64 * 1024);
    // Proves the test above can fail: the flood outruns the kernel buffers and lands in the gateway.
    await vi.waitFor(() => expect(endpoint?.stats().peakBufferedBytes).toBeGreaterThan(4 * 1024 * 1024), {
      timeout: 20_000,
    });
    resume(client);
    await client.next((message) => message.id === 5);
    await client.close();
  });
});
