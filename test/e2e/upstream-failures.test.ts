import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { isGatehouseError } from '../../src/errors/gatehouse-error.js';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/late-server.js';
import { ACCEPT, INIT, STATELESS_META } from '../helpers/mcp-http.js';

const crashy = fileURLToPath(new URL('../fixtures/crashy-server.ts', import.meta.url));
const STATELESS_LIST = { jsonrpc: '2.0', id: 7, method: 'tools/list', params: { _meta: STATELESS_META } };

interface RpcError {
  error: { code: number; message: string; data?: { code?: string; reason?: string } };
}

/** An HTTP server that answers every request with `handler` (a broken upstream). */
async function brokenUpstream(
  handler: Parameters<typeof createServer>[1],
): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/mcp`, server };
}

describe('upstream failures surface at once, with a stable reason, and create no session', () => {
  let gw: TestGateway | undefined;
  const servers: Server[] = [];
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
    for (const server of servers.splice(0)) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  async function initialize(running: TestGateway, body: unknown = INIT) {
    const token = await running.token('alice');
    const response = await fetch(running.mcpUrl, {
      method: 'POST',
      headers: {
        accept: ACCEPT,
        'content-type': 'application/json',
        authorization: `Bearer ${token}`,
        ...(body === STATELESS_LIST && { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' }),
      },
      body: JSON.stringify(body),
    });
    const sessions = await running.gateway.sessions.list({
      subject: 'alice',
      issuer: running.gateway.urls.issuer,
      scopes: [],
      claims: {},
      expiresAt: 0,
      verifier: 'gatehouse',
    });
    return { response, body: (await response.json()) as RpcError, sessions };
  }

  async function withHttpUpstream(url: string, extra: Record<string, unknown> = {}) {
    gw = await startTestGateway({ store: { kind: 'memory' }, upstream: { kind: 'http', url, ...extra } });
    return gw;
  }

  it('refuses to start when the stdio command does not exist', async () => {
    const error = await startTestGateway({
      upstream: { kind: 'stdio', command: 'gatehouse-test-no-such-command' },
    }).then(
      (running) => {
        gw = running;
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(isGatehouseError(error, 'ERR_CONFIG_INVALID')).toBe(true);
  });

  it('gatehouse serve with a missing --upstream-command exits 2 and says why', async () => {
    const result = await runCli(
      [
        'serve',
        '--port',
        '0',
        '--data-dir',
        '.gatehouse-test-missing',
        '--upstream-command',
        'gatehouse-test-no-such-command',
      ],
      fileURLToPath(new URL('../..', import.meta.url)),
      cleanEnv(),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('gatehouse-test-no-such-command');
  });

  it('a closed upstream URL: 502 upstream_unreachable, no session; /readyz says why', async () => {
    const running = await withHttpUpstream(`http://127.0.0.1:${await freePort()}/mcp`);
    const { response, body, sessions } = await initialize(running);
    expect(response.status).toBe(502);
    expect(response.headers.get('mcp-session-id')).toBeNull();
    expect(body.error.data).toMatchObject({
      code: 'ERR_UPSTREAM_UNAVAILABLE',
      reason: 'upstream_unreachable',
    });
    expect(sessions).toEqual([]);
    const ready = await fetch(new URL('/readyz', running.gateway.urls.publicUrl));
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({
      status: 'unavailable',
      upstream: { reason: 'upstream_unreachable' },
    });
    // The stateless era says the same.
    const stateless = await initialize(running, STATELESS_LIST);
    expect(stateless.response.status).toBe(502);
    expect(stateless.body.error.data?.reason).toBe('upstream_unreachable');
  });

  it('an upstream that refuses the gateway (401): 502 upstream_rejected, not "unavailable"', async () => {
    const upstream = await brokenUpstream((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' }).end('{}');
    });
    servers.push(upstream.server);
    const { response, body, sessions } = await initialize(await withHttpUpstream(upstream.url));
    expect(response.status).toBe(502);
    expect(body.error.data?.reason).toBe('upstream_rejected');
    expect(sessions).toEqual([]);
  });

  it('an upstream that answers garbage: 502 upstream_invalid_response', async () => {
    const upstream = await brokenUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html>not MCP</html>');
    });
    servers.push(upstream.server);
    const { response, body } = await initialize(await withHttpUpstream(upstream.url));
    expect(response.status).toBe(502);
    expect(body.error.data?.reason).toBe('upstream_invalid_response');
  });

  it('an upstream that never answers: 504 upstream_timeout within the configured time', async () => {
    const upstream = await brokenUpstream(() => {
      // Hold the request open: never answer.
    });
    servers.push(upstream.server);
    const running = await withHttpUpstream(upstream.url, { requestTimeoutMs: 1_000 });
    const { response, body, sessions } = await initialize(running);
    expect(response.status).toBe(504);
    expect(body.error.data).toMatchObject({ code: 'ERR_UPSTREAM_TIMEOUT', reason: 'upstream_timeout' });
    expect(sessions).toEqual([]);
  });

  it('a stdio command that exits at once: 502 upstream_spawn_failed, no session', async () => {
    gw = await startTestGateway({
      store: { kind: 'memory' },
      upstream: { kind: 'stdio', command: process.execPath, args: ['-e', 'process.exit(3)'] },
    });
    const { response, body, sessions } = await initialize(gw);
    expect(response.status).toBe(502);
    expect(body.error.data?.reason).toBe('upstream_spawn_failed');
    expect(sessions).toEqual([]);
  });

  it('a crash mid-call answers the waiting request with upstream_exited', async () => {
    gw = await startTestGateway({
      store: { kind: 'memory' },
      upstream: { kind: 'stdio', command: process.execPath, args: ['--import', 'tsx', crashy] },
    });
    const token = await gw.token('alice');
    const headers = { accept: ACCEPT, 'content-type': 'application/json', authorization: `Bearer ${token}` };
    const opened = await fetch(gw.mcpUrl, { method: 'POST', headers, body: JSON.stringify(INIT) });
    expect(opened.status).toBe(200);
    await opened.text();
    const sessionId = opened.headers.get('mcp-session-id') as string;
    const call = await fetch(gw.mcpUrl, {
      method: 'POST',
      headers: { ...headers, 'mcp-session-id': sessionId },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'crash', arguments: {} },
      }),
    });
    const text = await call.text();
    const answer = JSON.parse(
      text
        .split('\n')
        .find((line) => line.startsWith('data: '))
        ?.slice(6) ?? text,
    ) as RpcError;
    expect(answer.error.code).toBe(-32000);
    expect(answer.error.data?.reason).toBe('upstream_exited');
  });
});
