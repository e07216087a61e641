import { describe, expect, it } from 'vitest';
import { GatehouseError } from '../../../src/errors/gatehouse-error.js';
import { createGatewayMetrics, metricsResponder, routeGroups } from '../../../src/ops/metrics.js';
import { parseSamples, sampleValue } from '../../helpers/prometheus.js';

const groups = routeGroups({
  mcp: ['/mcp', '/sse', '/messages'],
  oauthToken: '/oauth/token',
  oauthAuthorize: '/oauth/authorize',
  oauthPrefix: '/oauth/',
  admin: '/admin',
  health: ['/healthz', '/readyz'],
  metrics: '/metrics',
});

async function scrape(metrics: ReturnType<typeof createGatewayMetrics>): Promise<string> {
  return (await metrics.scrape()).body;
}

describe('routeGroups', () => {
  it('names a bounded group for every path, never the path itself', () => {
    expect(groups('/mcp')).toBe('mcp');
    expect(groups('/messages')).toBe('mcp');
    expect(groups('/oauth/token')).toBe('oauth_token');
    expect(groups('/oauth/authorize')).toBe('oauth_authorize');
    expect(groups('/oauth/register')).toBe('oauth');
    expect(groups('/.well-known/oauth-protected-resource/mcp')).toBe('metadata');
    expect(groups('/admin')).toBe('admin');
    expect(groups('/admin/api/users')).toBe('admin');
    expect(groups('/administrator')).toBe('other');
    expect(groups('/readyz')).toBe('health');
    expect(groups('/metrics')).toBe('metrics');
    expect(groups('/mcp/../../etc/passwd')).toBe('other');
    expect(groups('/')).toBe('other');
  });
});

describe('createGatewayMetrics', () => {
  it('counts requests, auth failures, rate limits, tool calls, sessions and store errors from the edge and the events', async () => {
    const metrics = createGatewayMetrics({ routeGroup: groups, processMetrics: false });
    metrics.observeRequest('/mcp', 200);
    metrics.observeRequest('/mcp', 200);
    metrics.observeRequest('/mcp', 401);
    metrics.observeRequest('/oauth/token', 503, new GatehouseError('ERR_STORE_UNAVAILABLE', 'down'));
    metrics.observeRequest('/random/path/1', 404, new GatehouseError('ERR_NOT_FOUND', 'Not found'));
    metrics.observeError(new GatehouseError('ERR_STORE_UNAVAILABLE', 'down'));
    metrics.observeError(new Error('ERR_STORE_UNAVAILABLE'));
    metrics.observeEvent({
      type: 'guard.refused',
      error: 'invalid_token',
      reason: 'token_expired',
      status: 401,
      ip: '192.0.2.1',
      transport: 'streamable-http',
    });
    metrics.observeEvent({
      type: 'guard.refused',
      error: 'invalid_token',
      status: 401,
      ip: '192.0.2.1',
      transport: 'websocket',
    });
    metrics.observeEvent({
      type: 'oauth.token.refresh',
      outcome: 'failure',
      error: 'invalid_grant',
      reason: 'refresh_reused',
    });
    metrics.observeEvent({ type: 'login', outcome: 'failure', error: 'access_denied' });
    metrics.observeEvent({ type: 'login', outcome: 'success', principal: 'local#u' });
    metrics.observeEvent({ type: 'ratelimit.rejected', limit: 'requests-user', retryAfterSeconds: 3 });
    metrics.observeEvent({ type: 'ratelimit.rejected', limit: 'requests-user', retryAfterSeconds: 3 });
    metrics.observeEvent({
      type: 'session.opened',
      sessionId: 's',
      kind: 'streamable-http',
      principal: 'i#u',
      verifier: 'v',
      evicted: 0,
    });
    metrics.observeEvent({ type: 'session.ended', sessionId: 's', reason: 'deleted' });
    metrics.observeEvent({ type: 'upstream.failed', upstream: 'stdio', reason: 'upstream_exited' });
    const body = await scrape(metrics);

    expect(sampleValue(body, 'gatehouse_http_requests_total', { route: 'mcp', status: '200' })).toBe(2);
    expect(sampleValue(body, 'gatehouse_http_requests_total', { route: 'mcp', status: '401' })).toBe(1);
    expect(sampleValue(body, 'gatehouse_http_requests_total', { route: 'oauth_token', status: '503' })).toBe(
      1,
    );
    expect(sampleValue(body, 'gatehouse_http_requests_total', { route: 'other', status: '404' })).toBe(1);
    expect(body).not.toContain('/random/path');
    expect(sampleValue(body, 'gatehouse_store_errors_total')).toBe(2);
    expect(
      sampleValue(body, 'gatehouse_auth_failures_total', { event: 'guard.refused', reason: 'token_expired' }),
    ).toBe(1);
    expect(
      sampleValue(body, 'gatehouse_auth_failures_total', { event: 'guard.refused', reason: 'invalid_token' }),
    ).toBe(1);
    expect(
      sampleValue(body, 'gatehouse_auth_failures_total', {
        event: 'oauth.token.refresh',
        reason: 'refresh_reused',
      }),
    ).toBe(1);
    expect(
      sampleValue(body, 'gatehouse_auth_failures_total', { event: 'login', reason: 'access_denied' }),
    ).toBe(1);
    expect(sampleValue(body, 'gatehouse_auth_failures_total')).toBe(4);
    expect(sampleValue(body, 'gatehouse_rate_limit_rejections_total', { limit: 'requests-user' })).toBe(2);
    expect(sampleValue(body, 'gatehouse_sessions_opened_total', { kind: 'streamable-http' })).toBe(1);
    expect(sampleValue(body, 'gatehouse_sessions_ended_total', { reason: 'deleted' })).toBe(1);
    expect(sampleValue(body, 'gatehouse_upstream_failures_total', { reason: 'upstream_exited' })).toBe(1);
  });

  it('labels the first tool names and counts the rest as other', async () => {
    const metrics = createGatewayMetrics({ toolLabelMax: 2, processMetrics: false });
    const call = (tool: string, outcome: 'success' | 'error' | 'failed' = 'success') =>
      metrics.observeEvent({
        type: 'tool.called',
        principal: 'i#u',
        tool,
        durationMs: 1,
        outcome,
        transport: 'stateless',
      });
    call('add_note');
    call('list_notes');
    call('add_note', 'error');
    call('made_up_1');
    call('made_up_2');
    call('x'.repeat(500));
    const body = await scrape(metrics);
    expect(sampleValue(body, 'gatehouse_tool_calls_total', { tool: 'add_note', outcome: 'success' })).toBe(1);
    expect(sampleValue(body, 'gatehouse_tool_calls_total', { tool: 'add_note', outcome: 'error' })).toBe(1);
    expect(sampleValue(body, 'gatehouse_tool_calls_total', { tool: 'list_notes' })).toBe(1);
    expect(sampleValue(body, 'gatehouse_tool_calls_total', { tool: 'other' })).toBe(3);
    const tools = new Set(
      parseSamples(body)
        .filter((sample) => sample.name === 'gatehouse_tool_calls_total')
        .map((sample) => sample.labels.tool),
    );
    expect(tools).toEqual(new Set(['add_note', 'list_notes', 'other']));
  });

  it('times upstream requests by method and outcome, with unknown methods as other', async () => {
    let now = 1_000;
    const metrics = createGatewayMetrics({ monotonicNow: () => now, processMetrics: false });
    const { upstreamTimer } = metrics;
    const list = { method: 'tools/list' };
    const call = { method: 'tools/call' };
    const odd = { method: 'vendor/secret-method' };
    upstreamTimer.request(list);
    upstreamTimer.request(call);
    upstreamTimer.request(odd);
    now += 40;
    expect(upstreamTimer.response(list, { result: {} })).toEqual({ result: {} });
    now += 2_000;
    upstreamTimer.response(call, { error: { code: -32603, message: 'x' } });
    upstreamTimer.response(odd, { result: {} });
    // An answer to a request it never saw (answered by an interceptor before it) is not timed.
    upstreamTimer.response({ method: 'tools/list' }, { result: {} });
    const body = await scrape(metrics);
    const name = 'gatehouse_upstream_request_duration_seconds';
    expect(sampleValue(body, `${name}_count`, { method: 'tools/list', outcome: 'result' })).toBe(1);
    expect(sampleValue(body, `${name}_sum`, { method: 'tools/list' })).toBeCloseTo(0.04, 6);
    expect(sampleValue(body, `${name}_bucket`, { method: 'tools/list', le: '0.05' })).toBe(1);
    expect(sampleValue(body, `${name}_bucket`, { method: 'tools/list', le: '0.025' })).toBe(0);
    expect(sampleValue(body, `${name}_count`, { method: 'tools/call', outcome: 'error' })).toBe(1);
    expect(sampleValue(body, `${name}_sum`, { method: 'tools/call' })).toBeCloseTo(2.04, 6);
    expect(sampleValue(body, `${name}_count`, { method: 'other' })).toBe(1);
    expect(body).not.toContain('secret-method');
  });

  it('reads the verification cache, sessions, upstreams and the audit queue at each scrape', async () => {
    const stats = { hits: 3, misses: 1 };
    let sessions = 2;
    const metrics = createGatewayMetrics({
      processMetrics: false,
      upstreamKind: 'stdio',
      sources: {
        verification: () => stats,
        activeSessions: () => sessions,
        upstreamConnections: () => sessions + 1,
        audit: () => ({ queued: 7, dropped: 11 }),
      },
    });
    let body = await scrape(metrics);
    expect(sampleValue(body, 'gatehouse_token_verifications_total', { cache: 'hit' })).toBe(3);
    expect(sampleValue(body, 'gatehouse_token_verifications_total', { cache: 'miss' })).toBe(1);
    expect(sampleValue(body, 'gatehouse_token_cache_hit_ratio')).toBe(0.75);
    expect(sampleValue(body, 'gatehouse_active_sessions')).toBe(2);
    expect(sampleValue(body, 'gatehouse_upstream_connections', { kind: 'stdio' })).toBe(3);
    expect(sampleValue(body, 'gatehouse_audit_queue_entries')).toBe(7);
    expect(sampleValue(body, 'gatehouse_audit_dropped_total')).toBe(11);
    stats.hits = 9;
    sessions = 0;
    body = await scrape(metrics);
    expect(sampleValue(body, 'gatehouse_token_verifications_total', { cache: 'hit' })).toBe(9);
    expect(sampleValue(body, 'gatehouse_token_cache_hit_ratio')).toBe(0.9);
    expect(sampleValue(body, 'gatehouse_active_sessions')).toBe(0);
  });

  it('keeps each gateway in its own registry, and adds the process metrics once', async () => {
    const one = createGatewayMetrics();
    const two = createGatewayMetrics();
    one.observeRequest('/x', 200);
    const first = await scrape(one);
    const second = await scrape(two);
    expect(sampleValue(first, 'gatehouse_http_requests_total')).toBe(1);
    expect(sampleValue(second, 'gatehouse_http_requests_total')).toBe(0);
    for (const body of [first, second]) {
      expect(body).toContain('gatehouse_process_cpu_seconds_total');
      expect(body).toContain('gatehouse_nodejs_eventloop_lag_seconds');
      // Every metric family once: a scrape with a duplicate family is rejected by Prometheus.
      const families = body.split('\n').filter((line) => line.startsWith('# TYPE '));
      expect(new Set(families).size).toBe(families.length);
    }
  });
});

describe('metricsResponder', () => {
  it('answers only the bearer token, in constant time, with the Bearer challenge otherwise', async () => {
    const respond = metricsResponder(
      createGatewayMetrics({ processMetrics: false }),
      'scrape-secret-0123456789',
    );
    for (const authorization of [
      undefined,
      'Bearer wrong',
      'Basic c2NyYXBlOg==',
      'Bearer scrape-secret-012345678',
    ]) {
      const refused = await respond('GET', authorization);
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect(await refused.text()).not.toContain('gatehouse_');
    }
    const allowed = await respond('GET', 'Bearer scrape-secret-0123456789');
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await allowed.text()).toContain('gatehouse_http_requests_total');
    expect((await respond('POST', 'Bearer scrape-secret-0123456789')).status).toBe(405);
  });

  it('answers anyone when no bearer token is configured', async () => {
    const respond = metricsResponder(createGatewayMetrics({ processMetrics: false }), undefined);
    expect((await respond('GET', undefined)).status).toBe(200);
  });
});
