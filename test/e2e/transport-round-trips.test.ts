import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { WebSocketClientTransport } from '@modelcontextprotocol/sdk/client/websocket.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  type LoggingLevel,
  LoggingMessageNotificationSchema,
  type Progress,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import type { GatehouseConfigInput } from '../../src/config/schema.js';
import { TSX_LOADER } from '../helpers/cli.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { text } from '../helpers/mcp.js';
import { helloWebSocket, wsUrl } from '../helpers/websocket.js';

// Issue 17: WebSocket and legacy SSE relay what a tool sends back mid-call (progress, elicitation,
// sampling, logging), both ways, from a stdio upstream (a child per session) and an HTTP one.

const fixture = fileURLToPath(new URL('../fixtures/round-trip-server.ts', import.meta.url));
const fixtureArgs = ['--import', TSX_LOADER, fixture];

type TransportKind = 'websocket' | 'legacy-sse';
type UpstreamKind = 'stdio' | 'http';

/** The fixture over Streamable HTTP in a child process, once it listens. */
async function startHttpFixture(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [...fixtureArgs, '--port', '0'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const port = /listening (\d+)/.exec(stdout)?.[1];
      if (port !== undefined) resolve(port);
    });
    child.once('exit', (code) => reject(new Error(`round-trip fixture exited (${code}): ${stderr}`)));
  });
  return { url: `http://127.0.0.1:${port}/mcp`, child };
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill();
  });
}

/** A real SDK client that declares elicitation (form) and sampling, connected over `transport` as `user`. */
async function connect(gw: TestGateway, transport: TransportKind, user: string): Promise<Client> {
  const token = await gw.token(user);
  const client = new Client(
    { name: `round-trips-${transport}`, version: '1.0.0' },
    { capabilities: { elicitation: { form: {} }, sampling: {} } },
  );
  if (transport === 'legacy-sse') {
    const url = new URL('/sse', gw.gateway.urls.publicUrl);
    await client.connect(
      new SSEClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
    );
    return client;
  }
  // The transport creates its socket synchronously inside `connect`, so the stand-in is global only for
  // that moment and each client gets its own token.
  const globals = globalThis as { WebSocket?: unknown };
  const original = globals.WebSocket;
  globals.WebSocket = helloWebSocket(token);
  let connected: Promise<void>;
  try {
    connected = client.connect(new WebSocketClientTransport(new URL(wsUrl(gw))));
  } finally {
    globals.WebSocket = original;
  }
  await connected;
  return client;
}

const ABOVE_WARNING: readonly LoggingLevel[] = ['warning', 'error', 'critical', 'alert', 'emergency'];

describe.each<UpstreamKind>(['stdio', 'http'])('round trips from a %s upstream', (upstreamKind) => {
  let gw: TestGateway;
  let httpFixture: ChildProcess | undefined;

  beforeAll(async () => {
    let upstream: GatehouseConfigInput['upstream'];
    if (upstreamKind === 'http') {
      const started = await startHttpFixture();
      httpFixture = started.child;
      upstream = { kind: 'http', url: started.url };
    } else {
      upstream = { kind: 'stdio', command: process.execPath, args: fixtureArgs };
    }
    gw = await startTestGateway({ store: { kind: 'memory' }, upstream });
  });
  afterAll(async () => {
    await gw?.close();
    await stop(httpFixture);
  });

  describe.each<TransportKind>(['websocket', 'legacy-sse'])('over %s', (transport) => {
    const user = (name: string) => `${name}-${transport}-${upstreamKind}`;
    // One session carries the single-user round trips (as a real client's would): for a stdio upstream
    // that is one child instead of one per test. Each test installs the handlers it needs.
    let client: Client;
    beforeAll(async () => {
      client = await connect(gw, transport, user('carol'));
    });
    afterAll(async () => {
      await client?.close();
    });

    it('relays every progress notification, in order, before the result', async () => {
      const seen: Progress[] = [];
      const result = await client.callTool({ name: 'progress', arguments: { steps: 5 } }, undefined, {
        onprogress: (progress) => seen.push(progress),
      });
      const received = [...seen];
      expect(text(result)).toBe('done after 5 steps');
      expect(received).toEqual(
        [1, 2, 3, 4, 5].map((progress) => ({ progress, total: 5, message: `step ${progress}` })),
      );
    });

    it('relays a form elicitation to the client and its answer back to the tool', async () => {
      const asked: unknown[] = [];
      client.setRequestHandler(ElicitRequestSchema, (request) => {
        asked.push(request.params);
        return { action: 'accept', content: { answer: 'blue' } };
      });
      const result = await client.callTool({ name: 'ask', arguments: { question: 'Favourite colour?' } });
      expect(text(result)).toBe('accepted: blue');
      expect(asked).toEqual([
        expect.objectContaining({
          mode: 'form',
          message: 'Favourite colour?',
          requestedSchema: expect.objectContaining({ required: ['answer'] }),
        }),
      ]);
    });

    it('relays a declined elicitation back to the tool', async () => {
      let asked = 0;
      client.setRequestHandler(ElicitRequestSchema, () => {
        asked++;
        return { action: 'decline' };
      });
      const result = await client.callTool({ name: 'ask', arguments: { question: 'Share your email?' } });
      expect(text(result)).toBe('decline');
      expect(asked).toBe(1);
    });

    it('relays a sampling request to the client and its completion back to the tool', async () => {
      const prompts: unknown[] = [];
      client.setRequestHandler(CreateMessageRequestSchema, (request) => {
        prompts.push(request.params.messages);
        return { model: 'stand-in-model', role: 'assistant', content: { type: 'text', text: 'four' } };
      });
      const result = await client.callTool({ name: 'sample', arguments: { prompt: 'two plus two?' } });
      expect(text(result)).toBe('stand-in-model: four');
      expect(prompts).toEqual([[{ role: 'user', content: { type: 'text', text: 'two plus two?' } }]]);
    });

    it('relays logging/setLevel upstream and the log messages it lets through', async () => {
      const levels: LoggingLevel[] = [];
      client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => {
        levels.push(notification.params.level);
      });
      await client.setLoggingLevel('warning');
      const result = await client.callTool({ name: 'log', arguments: { unsolicited: false } });
      // The tool reports what it sent: only what the level set through the gateway lets through.
      expect(text(result)).toBe(ABOVE_WARNING.join(','));
      expect(levels).toEqual(ABOVE_WARNING);
    });

    it('relays log messages sent outside any request (over HTTP: the standalone GET stream)', async () => {
      const levels: LoggingLevel[] = [];
      client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => {
        levels.push(notification.params.level);
      });
      await client.setLoggingLevel('error');
      const result = await client.callTool({ name: 'log', arguments: { unsolicited: true } });
      expect(text(result)).toBe(ABOVE_WARNING.slice(1).join(','));
      // Another stream than the answer's: the messages may arrive after it, never not at all.
      await vi.waitFor(() => expect(levels).toEqual(ABOVE_WARNING.slice(1)), { timeout: 10_000 });
    });

    it("two users' elicitations each reach only their own client", async () => {
      const names = ['alice', 'bob'] as const;
      const asked: Record<(typeof names)[number], string[]> = { alice: [], bob: [] };
      // Neither answers until both were asked: the two calls are in flight together.
      let bothAsked!: () => void;
      const barrier = new Promise<void>((resolve) => {
        bothAsked = resolve;
      });
      const clients = await Promise.all(
        names.map(async (name) => {
          const client = await connect(gw, transport, user(name));
          onTestFinished(() => client.close());
          client.setRequestHandler(ElicitRequestSchema, async (request) => {
            asked[name].push(request.params.message);
            if (asked.alice.length + asked.bob.length === 2) bothAsked();
            await barrier;
            return { action: 'accept', content: { answer: `${name}'s answer` } };
          });
          return client;
        }),
      );
      const results = await Promise.all(
        clients.map((client, index) =>
          client.callTool({ name: 'ask', arguments: { question: `for ${names[index]}` } }),
        ),
      );
      expect(asked).toEqual({ alice: ['for alice'], bob: ['for bob'] });
      expect(results.map(text)).toEqual(["accepted: alice's answer", "accepted: bob's answer"]);
    });
  });
});

describe('a question to a person does not count against the upstream request deadline', () => {
  let gw: TestGateway;
  let httpFixture: ChildProcess | undefined;

  beforeAll(async () => {
    const started = await startHttpFixture();
    httpFixture = started.child;
    // A deadline far shorter than the person takes to answer.
    gw = await startTestGateway({
      store: { kind: 'memory' },
      upstream: { kind: 'http', url: started.url, requestTimeoutMs: 500 },
    });
  });
  afterAll(async () => {
    await gw?.close();
    await stop(httpFixture);
  });

  it.each<TransportKind>(['websocket', 'legacy-sse'])(
    'over %s, an answer after the deadline still completes the call',
    async (transport) => {
      const client = await connect(gw, transport, `slow-${transport}`);
      try {
        client.setRequestHandler(ElicitRequestSchema, async () => {
          await new Promise((resolve) => setTimeout(resolve, 1_500));
          return { action: 'accept', content: { answer: 'green' } };
        });
        const result = await client.callTool({ name: 'ask', arguments: { question: 'Favourite colour?' } });
        expect(text(result)).toBe('accepted: green');
      } finally {
        await client.close();
      }
    },
  );
});
