import { fileURLToPath } from 'node:url';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CredentialBroker } from '../../src/downstream/credential-broker.js';
import { createManualClock } from '../../src/ops/clock.js';
import { WS_CLOSE } from '../../src/transports/websocket.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { connectClient, text } from '../helpers/mcp.js';
import { eventually, isAlive } from '../helpers/wait.js';
import { connectRaw, type RawClient } from '../helpers/websocket.js';

const noTools = fileURLToPath(new URL('../fixtures/no-tools-server.ts', import.meta.url));
const envEcho = fileURLToPath(new URL('../fixtures/env-echo-server.ts', import.meta.url));
const DIAGNOSTIC_TOOLS = ['gatehouse_sessions', 'gatehouse_validate_token', 'gatehouse_whoami'];

function sseUrl(gw: TestGateway): URL {
  return new URL('/sse', gw.gateway.urls.publicUrl);
}

/** The SDK v1 SSE client (2024-11-05 transport) with a bearer token on the GET and every POST. */
async function sseClient(gw: TestGateway, token: string): Promise<V1Client> {
  const client = new V1Client({ name: 'sse-diagnostics', version: '1.0.0' });
  await client.connect(
    new SSEClientTransport(sseUrl(gw), { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
  );
  return client;
}

async function wsClient(gw: TestGateway, token: string): Promise<RawClient> {
  const client = await connectRaw(gw, { token });
  await client.initialize();
  return client;
}

const toolNames = (result: unknown) =>
  (result as { tools: Array<{ name: string }> }).tools.map((t) => t.name);

describe('diagnostics tools on WebSocket and legacy SSE', () => {
  let gw: TestGateway;
  const forbidden: string[] = [];
  let closeBob: () => Promise<void>;

  beforeAll(async () => {
    gw = await startTestGateway({ store: { kind: 'memory' }, diagnostics: { enabled: true } });
    // Bob holds a WebSocket session: nothing of it may show up in Alice's answers.
    const bobToken = await gw.token('bob-the-other-user');
    const bob = await wsClient(gw, bobToken);
    const ack = (await bob.call('whoami')) as string;
    forbidden.push(bobToken, 'bob-the-other-user', JSON.parse(ack).sessionId.slice(0, 8));
    closeBob = async () => void (await bob.close());
  });
  afterAll(async () => {
    await closeBob?.();
    await gw?.close();
  });

  function assertClean(output: string): void {
    for (const value of forbidden) expect(output).not.toContain(value);
  }

  it('WebSocket: lists the gatehouse_* tools with the upstream’s and answers them for this connection', async () => {
    const token = await gw.token('alice', { scope: 'notes' });
    forbidden.push(token);
    const alice = await wsClient(gw, token);
    const list = await alice.request('tools/list');
    expect(toolNames(list.result)).toEqual(expect.arrayContaining(['whoami', ...DIAGNOSTIC_TOOLS]));

    const whoami = await alice.request('tools/call', { name: 'gatehouse_whoami', arguments: {} });
    const who = JSON.parse(text(whoami.result));
    const own = JSON.parse(await alice.call('whoami')) as { sessionId: string };
    expect(who).toMatchObject({ subject: 'alice', scopes: ['notes'], verifier: 'gatehouse' });
    expect(who.session.idPrefix).toBe(own.sessionId.slice(0, 8));

    const sessions = JSON.parse(await alice.call('gatehouse_sessions'));
    expect(sessions.sessions).toEqual([
      expect.objectContaining({ kind: 'websocket', current: true, idPrefix: own.sessionId.slice(0, 8) }),
    ]);
    const validated = JSON.parse(await alice.call('gatehouse_validate_token', { token }));
    expect(validated).toMatchObject({ valid: true, claims: { sub: 'alice' } });
    assertClean(JSON.stringify([whoami, sessions, validated]));
    await alice.close();
  });

  it('legacy SSE: the same, through the SDK’s SSE client', async () => {
    const token = await gw.token('alice', { scope: 'notes' });
    forbidden.push(token);
    const alice = await sseClient(gw, token);
    expect(toolNames(await alice.listTools())).toEqual(
      expect.arrayContaining(['whoami', ...DIAGNOSTIC_TOOLS]),
    );
    const whoami = await alice.callTool({ name: 'gatehouse_whoami', arguments: {} });
    const own = JSON.parse(text(await alice.callTool({ name: 'whoami', arguments: {} }))) as {
      sessionId: string;
    };
    expect(JSON.parse(text(whoami))).toMatchObject({
      subject: 'alice',
      session: { idPrefix: own.sessionId.slice(0, 8) },
    });
    const sessions = await alice.callTool({ name: 'gatehouse_sessions', arguments: {} });
    expect(JSON.parse(text(sessions)).sessions).toEqual([
      expect.objectContaining({ kind: 'legacy-sse', current: true }),
    ]);
    assertClean(JSON.stringify([whoami, sessions]));
    await alice.close();
  });
});

describe('diagnostics tools in front of an upstream that has no tools', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      store: { kind: 'memory' },
      diagnostics: { enabled: true },
      upstream: { kind: 'stdio', command: process.execPath, args: ['--import', 'tsx', noTools] },
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  for (const era of ['2025', '2026-07-28'] as const) {
    it(`${era}: the tools capability is announced and the list holds the diagnostics tools`, async () => {
      const token = await gw.token('alice');
      const { client } = await connectClient(gw.mcpUrl, token, era);
      expect(client.getServerCapabilities()).toMatchObject({ tools: {}, prompts: expect.any(Object) });
      expect(toolNames(await client.listTools()).sort()).toEqual(DIAGNOSTIC_TOOLS);
      const who = JSON.parse(text(await client.callTool({ name: 'gatehouse_whoami', arguments: {} })));
      expect(who.subject).toBe('alice');
      // The upstream's own features are untouched.
      expect((await client.listPrompts()).prompts.map((prompt) => prompt.name)).toEqual(['greeting']);
      await client.close();
    });
  }

  it('WebSocket: initialize announces tools, tools/list answers the diagnostics tools', async () => {
    const alice = await connectRaw(gw, { token: await gw.token('alice') });
    const init = await alice.request('initialize', {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 'raw', version: '1.0.0' },
    });
    expect((init.result as { capabilities: Record<string, unknown> }).capabilities).toMatchObject({
      tools: {},
    });
    alice.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    expect(toolNames((await alice.request('tools/list')).result).sort()).toEqual(DIAGNOSTIC_TOOLS);
    await alice.close();
  });
});

describe('brokered credentials expire under a WebSocket or legacy SSE connection', () => {
  const clock = createManualClock(Date.now());
  const TTL_MS = 60_000;
  const broker: CredentialBroker = async (principal) => ({
    env: { DEMO_CLOUD_TOKEN: `cred-for-${principal.subject}-${clock.now()}` },
    expiresAt: clock.now() + TTL_MS,
  });
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway(
      {
        store: { kind: 'memory' },
        upstream: { kind: 'stdio', command: process.execPath, args: ['--import', 'tsx', envEcho] },
      },
      { clock, credentialBroker: broker },
    );
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('WebSocket: the first message after expiry closes with 4411 credentials_expired, unforwarded', async () => {
    const alice = await wsClient(gw, await gw.token('alice', { expiresInSeconds: 3600 }));
    const echo = JSON.parse(await alice.call('cloud_token')) as { token: string; pid: number };
    expect(echo.token).toMatch(/^cred-for-alice-/);
    clock.advance(TTL_MS);
    alice.send({
      jsonrpc: '2.0',
      id: 99,
      method: 'tools/call',
      params: { name: 'cloud_token', arguments: {} },
    });
    expect(await alice.closed).toEqual({ code: WS_CLOSE.credentialsExpired, reason: 'credentials_expired' });
  });

  it('legacy SSE: the first message after expiry ends the stream, its child and its session (404)', async () => {
    const alice = await sseClient(gw, await gw.token('alice', { expiresInSeconds: 3600 }));
    const echo = JSON.parse(text(await alice.callTool({ name: 'cloud_token', arguments: {} })));
    expect(echo.token).toMatch(/^cred-for-alice-/);
    clock.advance(TTL_MS);
    await expect(alice.callTool({ name: 'cloud_token', arguments: {} })).rejects.toThrow(/404/);
    await eventually(() => !isAlive(echo.pid));
    // The client's EventSource may reconnect: that is a new session with a new child, never the old one.
    await alice.close();
  });
});

describe('brokered credentials expiring on an idle connection (real time)', () => {
  // Counted from the broker's answer, which comes before the child is spawned and initialized: the
  // lifetime must leave room for a slow start on a loaded machine (two children through the TypeScript
  // loader, seen taking over 6 s at a load average of 20) before the first call is answered.
  const TTL_MS = 12_000;
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway(
      {
        store: { kind: 'memory' },
        upstream: { kind: 'stdio', command: process.execPath, args: ['--import', 'tsx', envEcho] },
      },
      {
        credentialBroker: async () => ({
          env: { DEMO_CLOUD_TOKEN: 'short' },
          expiresAt: Date.now() + TTL_MS,
        }),
      },
    );
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('closes a WebSocket and ends a legacy SSE stream when the credentials expire, without a message', async () => {
    const ws = await wsClient(gw, await gw.token('alice'));
    const sse = await sseClient(gw, await gw.token('bob'));
    expect(JSON.parse(await ws.call('cloud_token')).token).toBe('short');
    const sseChild = JSON.parse(text(await sse.callTool({ name: 'cloud_token', arguments: {} }))) as Echo;
    expect(await ws.closed).toEqual({ code: WS_CLOSE.credentialsExpired, reason: 'credentials_expired' });
    await eventually(() => !isAlive(sseChild.pid));
    await sse.close();
  });
});

interface Echo {
  token: string;
  pid: number;
}
