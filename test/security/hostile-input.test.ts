import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers/gateway.js';
import { connectRaw } from '../helpers/websocket.js';
import { capturingLogger, errorLines } from './helpers/capture-log.js';
import {
  ACCEPT,
  type EventLog,
  legacyPost,
  mcpRequest,
  openLegacyStream,
  openSession,
  PROTOCOL_2026,
  rpcOf,
  startRecorded,
} from './helpers/harness.js';
import { baseOf } from './helpers/oauth-client.js';

/**
 * Findings 6, 7 and part of 8: input built to exhaust the gateway — JSON nested 100,000 deep on every
 * transport, request bodies and headers that trickle in, and clients that hang up mid-body — is refused
 * with its documented answer, never a 500, a stack overflow, a hang or an error-level log line.
 */

const DEPTH = 100_000;
const deepArray = `${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}`;
const deepInEnvelope = JSON.stringify({
  jsonrpc: '2.0',
  id: 9,
  method: 'tools/call',
  params: { name: 'whoami', arguments: { a: 0 } },
}).replace('0', `${'{"a":'.repeat(DEPTH)}0${'}'.repeat(DEPTH)}`);

describe('deeply nested JSON on every transport (finding 6)', () => {
  let gw: TestGateway;
  let log: EventLog;
  let logged: ReturnType<typeof capturingLogger>;
  beforeAll(async () => {
    logged = capturingLogger();
    ({ gw, log } = await startRecorded({ store: { kind: 'memory' } }, { logger: logged.logger }));
  });
  afterAll(async () => {
    await gw?.close();
  });

  async function expectParseError(response: Response): Promise<void> {
    expect(response.status).toBe(400);
    const body = await rpcOf(response);
    expect(body.error?.code).toBe(-32700);
  }

  // req: MCP-TRANSPORT-POST-ERROR-STATUS
  it('Streamable HTTP, 2025 session: -32700 with HTTP 400, and the session still works', async () => {
    const token = await gw.token('alice');
    const sessionId = await openSession(gw, token);
    for (const raw of [deepArray, deepInEnvelope]) {
      await expectParseError(
        await mcpRequest(gw, token, undefined, { sessionId, raw, headers: {}, method: 'POST' }),
      );
    }
    const ping = await mcpRequest(gw, token, { jsonrpc: '2.0', id: 3, method: 'ping' }, { sessionId });
    expect(ping.status).toBe(200);
    await ping.text();
  });

  it('Streamable HTTP, stateless 2026-07-28: -32700 with HTTP 400', async () => {
    const token = await gw.token('alice');
    for (const raw of [deepArray, deepInEnvelope]) {
      await expectParseError(
        await mcpRequest(gw, token, undefined, {
          raw,
          headers: {
            'mcp-protocol-version': PROTOCOL_2026,
            'mcp-method': 'tools/call',
            'mcp-name': 'whoami',
          },
        }),
      );
    }
  });

  it('legacy SSE POST /messages: -32700 with HTTP 400, and the stream lives on', async () => {
    const token = await gw.token('alice');
    const stream = await openLegacyStream(gw, token);
    try {
      for (const raw of [deepArray, deepInEnvelope]) {
        await expectParseError(await legacyPost(gw, stream.messagesPath, token, raw));
      }
      expect(
        (
          await legacyPost(gw, stream.messagesPath, token, {
            jsonrpc: '2.0',
            id: 5,
            method: 'initialize',
            params: {
              protocolVersion: '2024-11-05',
              capabilities: {},
              clientInfo: { name: 'x', version: '1' },
            },
          })
        ).status,
      ).toBe(202);
      expect(JSON.parse((await stream.next())?.data ?? '{}')).toMatchObject({ id: 5 });
    } finally {
      await stream.close();
    }
  });

  it('WebSocket, before and after authentication: close 4400 malformed_message', async () => {
    const token = await gw.token('alice');
    for (const raw of [deepArray, deepInEnvelope]) {
      const anonymous = await connectRaw(gw);
      anonymous.send(raw);
      expect(await anonymous.closed).toEqual({ code: 4400, reason: 'malformed_message' });
      const authenticated = await connectRaw(gw, { token });
      await authenticated.initialize();
      authenticated.send(raw);
      expect(await authenticated.closed).toEqual({ code: 4400, reason: 'malformed_message' });
    }
  });

  it('OAuth JSON endpoint (registration, bodies up to 16 KiB): 400, never 500', async () => {
    const deepest = 7_000; // as deep as its body limit allows
    const response = await fetch(`${baseOf(gw)}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"redirect_uris":${'['.repeat(deepest)}${']'.repeat(deepest)}}`,
      signal: AbortSignal.timeout(10_000),
    });
    expect(response.status).toBe(400);
    await response.text();
  });

  it('none of it was an error-level log line or a failed upstream', () => {
    expect(errorLines(logged.lines)).toEqual([]);
    expect(log.of('upstream.failed')).toEqual([]);
  });
});

/** A raw TCP client: what it received, and when the gateway closed the connection. */
function rawClient(port: number): { socket: Socket; received: () => string; closed: Promise<number> } {
  const started = Date.now();
  const socket = connect(port, '127.0.0.1');
  let received = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
  });
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - started)));
  return { socket, received: () => received, closed };
}

describe('slow requests are cut off (finding 7)', () => {
  let gw: TestGateway;
  let logged: ReturnType<typeof capturingLogger>;
  beforeAll(async () => {
    logged = capturingLogger();
    ({ gw } = await startRecorded(
      { store: { kind: 'memory' }, server: { headersTimeoutMs: 2_000, requestTimeoutMs: 3_000 } },
      { logger: logged.logger },
    ));
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('an unauthenticated POST /oauth/token trickling one byte every 2 s is cut off with 408', async () => {
    const client = rawClient(gw.port);
    client.socket.write(
      'POST /oauth/token HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 64\r\n\r\n',
    );
    let sent = 0;
    const trickle = setInterval(() => {
      if (!client.socket.destroyed) client.socket.write('g');
      sent += 1;
    }, 2_000);
    try {
      // Meanwhile the gateway serves everyone else.
      const metadata = await fetch(`${baseOf(gw)}/.well-known/oauth-authorization-server`);
      expect(metadata.status).toBe(200);
      await metadata.text();
      const closedAfterMs = await client.closed;
      // requestTimeoutMs is 3 s; allow a loaded machine plenty (the default would be 30 s, the trickle 128 s).
      expect(closedAfterMs).toBeLessThan(15_000);
      expect(sent).toBeLessThan(7);
      expect(client.received()).toMatch(/^(HTTP\/1\.1 408|$)/);
    } finally {
      clearInterval(trickle);
      client.socket.destroy();
    }
  });

  it('headers trickling in (slowloris) are cut off by headersTimeoutMs', async () => {
    const client = rawClient(gw.port);
    const header = 'POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ';
    client.socket.write(header);
    const trickle = setInterval(() => {
      if (!client.socket.destroyed) client.socket.write('a');
    }, 300);
    try {
      expect(await client.closed).toBeLessThan(12_000);
      expect(client.received()).toMatch(/^(HTTP\/1\.1 408|$)/);
    } finally {
      clearInterval(trickle);
      client.socket.destroy();
    }
  });

  it('a client that hangs up mid-body is logged as what it is, never as an error (finding 8)', async () => {
    const token = await gw.token('alice');
    for (const [path, type, extra] of [
      ['/oauth/token', 'application/x-www-form-urlencoded', ''],
      ['/mcp', 'application/json', `accept: ${ACCEPT}\r\nauthorization: Bearer ${token}\r\n`],
      ['/oauth/register', 'application/json', ''],
    ] as const) {
      const client = rawClient(gw.port);
      client.socket.write(
        `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: ${type}\r\ncontent-length: 4096\r\n${extra}\r\n{"partial":`,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      client.socket.destroy();
      await client.closed;
    }
    // The handlers notice the abort asynchronously: give them time, then check nothing was logged as an error.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(errorLines(logged.lines)).toEqual([]);
  });
});
