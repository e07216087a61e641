import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/ops/logger.js';
import type { Stores } from '../../src/stores/ports.js';
import { createSqliteStores } from '../../src/stores/sqlite/index.js';
import { guarded } from '../../src/stores/sqlite/store-error.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { INIT, postMcp } from '../helpers/mcp-http.js';
import { sampleValue } from '../helpers/prometheus.js';
import { eventually } from '../helpers/wait.js';

const TOKEN_BEARER = 'metrics-scraper-token-0123456789';

/** What the client saw: every HTTP answer of the MCP endpoint, by status. */
function recordingFetch() {
  const statuses: number[] = [];
  const fetchLike = async (input: string | URL | Request, init?: RequestInit) => {
    const response = await fetch(input, init);
    statuses.push(response.status);
    return response;
  };
  const count = (status: number) => statuses.filter((s) => s === status).length;
  return { fetch: fetchLike, statuses, count };
}

describe('/metrics on the main port: a scripted workload moves the counters by what it did', () => {
  let gw: TestGateway;
  let metricsUrl: string;
  const scrape = async () => {
    const response = await fetch(metricsUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return response.text();
  };

  beforeAll(async () => {
    gw = await startTestGateway({ limits: { requestsPerUserPerMinute: 10 } });
    metricsUrl = `${gw.gateway.urls.publicUrl}/metrics`;
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('counts requests, tool calls, upstream latency, refusals, rate limits, sessions and cache hits', async () => {
    const before = await scrape();
    const token = await gw.token('alice');
    const seen = recordingFetch();
    const client = new Client({ name: 'metrics-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(gw.mcpUrl, {
      authProvider: { token: async () => token },
      fetch: seen.fetch,
    });
    await client.connect(transport);
    const tools = await client.listTools();
    expect(tools.tools.map((tool) => tool.name)).toContain('notes_add');
    const added = await client.callTool({ name: 'notes_add', arguments: { text: 'metrics' } });
    expect(added.isError).not.toBe(true);

    // While the session is open: one session here, one upstream process.
    const during = await scrape();
    expect(sampleValue(during, 'gatehouse_active_sessions')).toBe(1);
    expect(sampleValue(during, 'gatehouse_upstream_connections', { kind: 'stdio' })).toBe(1);

    const refused = await postMcp(gw.mcpUrl, 'not-a-token', { jsonrpc: '2.0', id: 1, method: 'ping' });
    expect(refused.status).toBe(401);

    // Bob spends his ten admissions per minute; the eleventh request is refused with 429.
    const bob = await gw.token('bob');
    const bobStatuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      const response = await postMcp(gw.mcpUrl, bob, { jsonrpc: '2.0', id: i, method: 'ping' });
      await response.body?.cancel();
      bobStatuses.push(response.status);
    }
    expect(bobStatuses.filter((status) => status === 429)).toHaveLength(1);
    expect(bobStatuses.at(-1)).toBe(429);

    await transport.terminateSession();
    await client.close();
    await eventually(async () => sampleValue(await scrape(), 'gatehouse_active_sessions') === 0);
    const after = await scrape();

    const delta = (name: string, labels: Record<string, string> = {}) =>
      sampleValue(after, name, labels) - sampleValue(before, name, labels);

    // Every answer the client saw on the MCP endpoint is counted under `mcp`, by status.
    for (const status of new Set(seen.statuses)) {
      const extra = status === 401 ? 1 : 0;
      const bobs = bobStatuses.filter((s) => s === status).length;
      expect(
        delta('gatehouse_http_requests_total', { route: 'mcp', status: String(status) }),
        `status ${status}`,
      ).toBe(seen.count(status) + extra + bobs);
    }
    expect(delta('gatehouse_http_requests_total', { route: 'mcp', status: '429' })).toBe(1);
    expect(delta('gatehouse_http_requests_total', { route: 'mcp', status: '401' })).toBe(1 + seen.count(401));
    // The scrapes themselves are counted under `metrics`, never as a path.
    expect(
      delta('gatehouse_http_requests_total', { route: 'metrics', status: '200' }),
    ).toBeGreaterThanOrEqual(2);
    expect(after).not.toMatch(/route="\/mcp"/);

    expect(delta('gatehouse_tool_calls_total', { tool: 'notes_add', outcome: 'success' })).toBe(1);
    expect(delta('gatehouse_tool_calls_total')).toBe(1);
    const latency = 'gatehouse_upstream_request_duration_seconds_count';
    expect(delta(latency, { method: 'initialize', outcome: 'result' })).toBe(1);
    expect(delta(latency, { method: 'tools/list', outcome: 'result' })).toBe(1);
    expect(delta(latency, { method: 'tools/call', outcome: 'result' })).toBe(1);
    expect(
      delta('gatehouse_upstream_request_duration_seconds_sum', { method: 'tools/call' }),
    ).toBeGreaterThan(0);

    expect(delta('gatehouse_auth_failures_total', { event: 'guard.refused' })).toBe(1);
    expect(delta('gatehouse_rate_limit_rejections_total', { limit: 'requests-user' })).toBe(1);
    expect(delta('gatehouse_sessions_opened_total', { kind: 'streamable-http' })).toBe(1);
    expect(delta('gatehouse_sessions_ended_total', { reason: 'deleted' })).toBe(1);

    // Alice's token was verified once, then answered from the cache; bob's likewise; the bad token missed.
    const hits = delta('gatehouse_token_verifications_total', { cache: 'hit' });
    const misses = delta('gatehouse_token_verifications_total', { cache: 'miss' });
    expect(misses).toBe(3);
    expect(hits).toBe(seen.statuses.length - 1 + bobStatuses.length - 1);
    expect(sampleValue(after, 'gatehouse_token_cache_hit_ratio')).toBeGreaterThan(0);
    expect(sampleValue(after, 'gatehouse_store_errors_total')).toBe(0);
    expect(sampleValue(after, 'gatehouse_audit_dropped_total')).toBe(0);
    // Process metrics, from the gateway's own scrape.
    expect(sampleValue(after, 'gatehouse_nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(after).toContain('gatehouse_process_resident_memory_bytes');
  });
});

describe('/metrics on a port of its own, behind a bearer token', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({ metrics: { port: 0, bearerToken: TOKEN_BEARER } });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('answers 401 with a Bearer challenge without the token, 200 with it; the main port serves none', async () => {
    const server = await gw.gateway.metricsServer();
    expect(server).toBeDefined();
    const url = `http://127.0.0.1:${server?.port}/metrics`;

    const anonymous = await fetch(url);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer /);
    const wrong = await fetch(url, { headers: { authorization: 'Bearer not-the-scraper-token-000000' } });
    expect(wrong.status).toBe(401);

    const token = await gw.token('carol');
    const response = await postMcp(gw.mcpUrl, token, {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    });
    expect(response.status).toBe(200);
    await response.body?.cancel();

    const allowed = await fetch(url, { headers: { authorization: `Bearer ${TOKEN_BEARER}` } });
    expect(allowed.status).toBe(200);
    const body = await allowed.text();
    expect(sampleValue(body, 'gatehouse_http_requests_total', { route: 'mcp', status: '200' })).toBe(1);
    expect(sampleValue(body, 'gatehouse_sessions_opened_total')).toBe(1);
    // Scrapes on the metrics port are not requests to the gateway.
    expect(sampleValue(body, 'gatehouse_http_requests_total', { route: 'metrics' })).toBe(0);
    expect((await fetch(`http://127.0.0.1:${server?.port}/other`)).status).toBe(404);

    const main = await fetch(`${gw.gateway.urls.publicUrl}/metrics`, {
      headers: { authorization: `Bearer ${TOKEN_BEARER}` },
    });
    expect(main.status).toBe(404);
    expect(await main.text()).not.toContain('gatehouse_http_requests_total');
  });
});

describe('/metrics on a port of its own without a token', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({ metrics: { port: 0 } });
  });
  afterAll(async () => {
    await gw?.close();
  });

  /** A scrape with `host` as the Host header (fetch cannot set it). */
  function scrape(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const request = httpRequest(
        { host: '127.0.0.1', port, path: '/metrics', headers: { host } },
        (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        },
      );
      request.on('error', reject);
      request.end();
    });
  }

  // req: MCP-TRANSPORT-HOST
  it("serves scrapes by address or by the gateway's own names, and refuses a rebound name", async () => {
    const port = (await gw.gateway.metricsServer())?.port as number;
    expect(await scrape(port, `127.0.0.1:${port}`)).toBe(200);
    expect(await scrape(port, `10.1.2.3:${port}`)).toBe(200);
    expect(await scrape(port, `[::1]:${port}`)).toBe(200);
    expect(await scrape(port, `localhost:${port}`)).toBe(200);
    expect(await scrape(port, `evil.example.com:${port}`)).toBe(403);
  });
});

describe('store errors', () => {
  let gw: TestGateway | undefined;
  let stores: Stores | undefined;
  let dir: string | undefined;
  afterAll(async () => {
    await gw?.close();
    await stores?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('counts every answer ERR_STORE_UNAVAILABLE, whose request id is the one in the body and the header', async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-metrics-'));
    stores = createSqliteStores({ path: join(dir, 'gatehouse.db') });
    // Sessions cannot be created: SQLite fails as a broken disk makes it fail.
    const failing = () => {
      const db = new Database(':memory:');
      return guarded(() => db.prepare('SELECT * FROM missing_table').all()) as Promise<never>;
    };
    gw = await startTestGateway(
      { store: { kind: 'memory' } },
      { stores: { ...stores, sessions: { ...stores.sessions, create: failing } } },
    );
    const token = await gw.token('alice');
    for (let i = 0; i < 2; i++) {
      const response = await postMcp(gw.mcpUrl, token, INIT);
      expect(response.status).toBe(503);
      const body = (await response.json()) as { error: { data: { code: string; requestId?: string } } };
      expect(body.error.data.code).toBe('ERR_STORE_UNAVAILABLE');
      expect(response.headers.get('x-request-id')).toMatch(/^[A-Za-z0-9_-]{16}$/);
      expect(body.error.data.requestId).toBe(response.headers.get('x-request-id'));
    }
    const metrics = await (await fetch(`${gw.gateway.urls.publicUrl}/metrics`)).text();
    expect(sampleValue(metrics, 'gatehouse_store_errors_total')).toBe(2);
    expect(sampleValue(metrics, 'gatehouse_http_requests_total', { route: 'mcp', status: '503' })).toBe(2);
  });
});

describe('production mode', () => {
  it('warns at start when metrics are on the main port without a bearer token, and only then', async () => {
    const warnings = async (metrics: Record<string, unknown>) => {
      const text: string[] = [];
      const logger = createLogger({
        level: 'warn',
        destination: new Writable({
          write(chunk, _encoding, done) {
            text.push(String(chunk));
            done();
          },
        }),
      });
      const gw = await startTestGateway({ mode: 'production', metrics }, { logger });
      await gw.close();
      return text
        .join('')
        .split('\n')
        .filter((line) => line.includes('metrics are served on the main port without a bearer token'));
    };
    expect(await warnings({})).toHaveLength(1);
    expect(await warnings({ bearerToken: TOKEN_BEARER })).toHaveLength(0);
    expect(await warnings({ port: 0 })).toHaveLength(0);
    expect(await warnings({ enabled: false })).toHaveLength(0);
  });
});
