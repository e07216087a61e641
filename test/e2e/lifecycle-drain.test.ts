import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { cleanEnv, TSX_LOADER } from '../helpers/cli.js';
import { type ServeProcess, startServe } from '../helpers/serve-process.js';

const slowServer = fileURLToPath(new URL('../fixtures/slow-server.ts', import.meta.url));
const SECRET = 'lifecycle-test-shared-secret-0123456789abcdef';
const AUDIENCE = 'lifecycle-test';

function token(user: string): Promise<string> {
  return new SignJWT({ scope: '' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(user)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(SECRET));
}

/** A connection opened (and used once) before the signal, as a load balancer's pooled connection is. */
interface KeptAlive {
  /** Sends a raw HTTP/1.1 request and resolves with everything read until the server closes. */
  lastRequest(raw: string): Promise<{ status: number; head: string; body: string }>;
}

async function keptAlive(port: number): Promise<KeptAlive> {
  const socket: Socket = connect(port, '127.0.0.1');
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
  });
  socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
  await vi.waitFor(() => expect(buffer).toContain('{"status":"ok"}'), { timeout: 10_000 });
  return {
    lastRequest(raw) {
      buffer = '';
      const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.write(raw);
      return ended.then(() => {
        const at = buffer.indexOf('\r\n\r\n');
        const head = buffer.slice(0, at);
        return { status: Number(head.split(' ')[1]), head: head.toLowerCase(), body: buffer.slice(at + 4) };
      });
    },
  };
}

const post = (path: string, body: string) =>
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

function collectStdout(serve: ServeProcess): () => string {
  let out = '';
  serve.child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  return () => out;
}

async function mcpClient(url: string, era: '2025' | 'stateless'): Promise<Client> {
  const bearer = await token('alice');
  const client = new Client(
    { name: 'lifecycle', version: '1.0.0' },
    era === '2025' ? {} : { versionNegotiation: { mode: { pin: '2026-07-28' } } },
  );
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), { authProvider: { token: async () => bearer } }),
  );
  return client;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

function childPids(dir: string): number[] {
  return readdirSync(dir)
    .filter((name) => name.startsWith('pid-'))
    .map((name) => Number(name.slice(4)));
}

function startedCalls(dir: string): number {
  return readdirSync(dir).filter((name) => name.startsWith('started-')).length;
}

describe('SIGTERM drains a running gatehouse serve', () => {
  const cleanup: Array<() => void | Promise<void>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  function workDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-drain-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  async function serveWith(dir: string, config: Record<string, unknown>): Promise<ServeProcess> {
    const file = join(dir, 'gatehouse.json');
    writeFileSync(
      file,
      JSON.stringify({
        dataDir: join(dir, 'data'),
        store: { kind: 'memory' },
        server: { port: 0, ...(config.server as object | undefined) },
        authorizationServer: { enabled: false },
        auth: { verifiers: [{ kind: 'hs256', secret: SECRET, audience: AUDIENCE }] },
        log: { level: 'info' },
        ...Object.fromEntries(Object.entries(config).filter(([key]) => key !== 'server')),
      }),
    );
    const running = await startServe(['--config', file], { cwd: dir, env: cleanEnv(), timeoutMs: 60_000 });
    cleanup.push(async () => {
      if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGKILL');
      await running.exited;
    });
    return running;
  }

  /** An MCP client of `running` in `era`, closed after the test. */
  async function connected(running: ServeProcess, era: '2025' | 'stateless'): Promise<Client> {
    const client = await mcpClient(running.mcpUrl, era);
    cleanup.push(() => client.close().catch(() => undefined));
    return client;
  }

  const stdioUpstream = (dir: string) => ({
    kind: 'stdio',
    command: process.execPath,
    args: ['--import', TSX_LOADER, slowServer],
    env: { SLOW_SERVER_DIR: dir },
  });

  it('lets stdio tool calls in flight finish, refuses new requests, says draining, exits 0 and leaves no child', async () => {
    const dir = workDir();
    const gate = join(dir, 'release');
    const running = await serveWith(dir, { upstream: stdioUpstream(dir) });
    const stdout = collectStdout(running);
    const port = Number(new URL(running.mcpUrl).port);
    const session = await connected(running, '2025');
    const stateless = await connected(running, 'stateless');
    const probe = await keptAlive(port);
    const caller = await keptAlive(port);

    const calls = [session, stateless].map((client) =>
      client.callTool({ name: 'slow', arguments: { gate } }),
    );
    // Awaited below; a failure must fail the test, not surface later as an unhandled rejection.
    for (const call of calls) call.catch(() => undefined);
    await vi.waitFor(() => expect(startedCalls(dir)).toBe(2), { timeout: 20_000 });
    // One child for the session, one for the user's stateless traffic (and any the client's discovery opened).
    const children = childPids(dir);
    expect(children.length).toBeGreaterThanOrEqual(2);

    running.child.kill('SIGTERM');
    await vi.waitFor(() => expect(stdout()).toContain('draining'), { timeout: 10_000 });

    // A load balancer's probe on its kept-alive connection learns to stop sending.
    const ready = await probe.lastRequest('GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body)).toEqual({ status: 'draining' });
    expect(ready.head).toContain('connection: close');
    // A new request on a kept-alive connection is refused with where to go: retry elsewhere, later.
    const refused = await caller.lastRequest(post('/mcp', '{"jsonrpc":"2.0","id":1,"method":"ping"}'));
    expect(refused.status).toBe(503);
    expect(refused.head).toContain('connection: close');
    expect(refused.head).toMatch(/retry-after: \d+/);
    expect(JSON.parse(refused.body).error.data.code).toBe('ERR_SHUTTING_DOWN');
    // No new connection is accepted.
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    // Still draining: the calls are held, not cut.
    expect(running.child.exitCode).toBeNull();

    writeFileSync(gate, '');
    const results = await Promise.all(calls);
    for (const result of results) {
      expect((result.content as Array<{ text: string }>)[0]?.text).toMatch(/^done \d+ by \d+$/);
    }
    expect(await running.exited).toBe(0);
    expect(stdout()).toContain('"msg":"stopped"');
    for (const pid of children) expect(alive(pid)).toBe(false);
  }, 90_000);

  it('lets HTTP-upstream tool calls in flight finish, then exits 0', async () => {
    const dir = workDir();
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = 0;
    const handler = createMcpHandler(
      () => {
        const server = new McpServer({ name: 'slow-http', version: '0.0.0' });
        server.registerTool('slow', { inputSchema: z.object({}) }, async () => {
          started++;
          await released;
          return { content: [{ type: 'text', text: 'done over http' }] };
        });
        return server;
      },
      { legacy: 'stateless' },
    );
    const upstream = serve({ hostname: '127.0.0.1', port: 0, fetch: (request) => handler.fetch(request) });
    await new Promise<void>((resolve) => upstream.once('listening', () => resolve()));
    const upstreamPort = (upstream.address() as { port: number }).port;
    cleanup.push(async () => {
      release();
      await handler.close();
      upstream.close();
    });
    const running = await serveWith(dir, {
      upstream: { kind: 'http', url: `http://127.0.0.1:${upstreamPort}/mcp` },
    });
    const stdout = collectStdout(running);
    const port = Number(new URL(running.mcpUrl).port);
    const session = await connected(running, '2025');
    const stateless = await connected(running, 'stateless');
    const probe = await keptAlive(port);

    const calls = [session, stateless].map((client) => client.callTool({ name: 'slow', arguments: {} }));
    await vi.waitFor(() => expect(started).toBe(2), { timeout: 20_000 });
    running.child.kill('SIGTERM');
    await vi.waitFor(() => expect(stdout()).toContain('draining'), { timeout: 10_000 });
    const ready = await probe.lastRequest('GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(ready.status).toBe(503);
    expect(running.child.exitCode).toBeNull();

    release();
    const results = await Promise.all(calls);
    for (const result of results) {
      expect((result.content as Array<{ text: string }>)[0]?.text).toBe('done over http');
    }
    expect(await running.exited).toBe(0);
  }, 90_000);

  it('exits at once (143) on a second SIGTERM during the drain, and the children still go', async () => {
    const dir = workDir();
    const gate = join(dir, 'release');
    const running = await serveWith(dir, { upstream: stdioUpstream(dir) });
    const stdout = collectStdout(running);
    const session = await connected(running, '2025');
    // Its answer never comes (the client would wait out its own request timeout); only the exit matters.
    session.callTool({ name: 'slow', arguments: { gate } }).catch(() => undefined);
    await vi.waitFor(() => expect(startedCalls(dir)).toBe(1), { timeout: 20_000 });

    running.child.kill('SIGTERM');
    await vi.waitFor(() => expect(stdout()).toContain('draining'), { timeout: 10_000 });
    expect(running.child.exitCode).toBeNull();
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(143);
    expect(existsSync(gate)).toBe(false);
    // The child saw its stdin close and went away by itself.
    for (const pid of childPids(dir)) {
      await vi.waitFor(() => expect(alive(pid)).toBe(false), { timeout: 15_000 });
    }
  }, 90_000);

  it('force-exits 1 past server.shutdownTimeoutMs, saying what was cut off', async () => {
    const dir = workDir();
    const gate = join(dir, 'release');
    const running = await serveWith(dir, {
      server: { shutdownTimeoutMs: 300 },
      upstream: stdioUpstream(dir),
    });
    const stdout = collectStdout(running);
    const session = await connected(running, '2025');
    // Its answer never comes (the client would wait out its own request timeout); only the exit matters.
    session.callTool({ name: 'slow', arguments: { gate } }).catch(() => undefined);
    await vi.waitFor(() => expect(startedCalls(dir)).toBe(1), { timeout: 20_000 });

    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(1);
    const cutOff = stdout()
      .split('\n')
      .filter((line) => line.includes('shutdown deadline passed'))
      .map((line) => JSON.parse(line) as { requests: string[]; phase: string; msg: string });
    expect(cutOff).toHaveLength(1);
    expect(cutOff[0]?.phase).toBe('in-flight');
    expect(cutOff[0]?.requests).toEqual(['POST /mcp']);
    for (const pid of childPids(dir)) {
      await vi.waitFor(() => expect(alive(pid)).toBe(false), { timeout: 15_000 });
    }
  }, 90_000);
});
