import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { GatehouseError } from '../errors/gatehouse-error.js';
import type { GatehouseEvent } from './events.js';

/**
 * What a request was for, as the request counter labels it: a short, fixed list (never the raw path, which
 * anyone can make up).
 */
export type RouteGroup =
  | 'mcp'
  | 'oauth_token'
  | 'oauth_authorize'
  | 'oauth'
  | 'metadata'
  | 'admin'
  | 'health'
  | 'metrics'
  | 'other';

/** The paths the gateway serves, by group; anything else is `other`. */
export interface RoutePaths {
  /** The MCP endpoint, legacy SSE's two paths, the WebSocket path. */
  readonly mcp: readonly string[];
  readonly oauthToken: string;
  readonly oauthAuthorize: string;
  /** Every other authorization-server path starts with it (`/oauth/`). */
  readonly oauthPrefix: string;
  /** The admin API and console (`/admin`, and below it). */
  readonly admin: string;
  readonly health: readonly string[];
  /** `/metrics` when served on the main port. */
  readonly metrics?: string | undefined;
}

/** Classifies a request path into its {@link RouteGroup}. */
export function routeGroups(paths: RoutePaths): (path: string) => RouteGroup {
  const mcp = new Set(paths.mcp);
  const health = new Set(paths.health);
  return (path) => {
    if (mcp.has(path)) return 'mcp';
    if (path === paths.oauthToken) return 'oauth_token';
    if (path === paths.oauthAuthorize) return 'oauth_authorize';
    if (path.startsWith(paths.oauthPrefix)) return 'oauth';
    if (path.startsWith('/.well-known/')) return 'metadata';
    if (path === paths.admin || path.startsWith(`${paths.admin}/`)) return 'admin';
    if (health.has(path)) return 'health';
    if (paths.metrics !== undefined && path === paths.metrics) return 'metrics';
    return 'other';
  };
}

/** What the gateway knows locally, read at each scrape. */
export interface MetricsSources {
  /** The verification cache's counters (`gateway.verification.stats()`). */
  readonly verification?: () => { readonly hits: number; readonly misses: number };
  /** Sessions holding an upstream on this instance (2025-era relays, WebSocket, legacy SSE). */
  readonly activeSessions?: () => number;
  /** Upstream connections held by this instance: sessions' and per-user stateless ones (stdio: child processes). */
  readonly upstreamConnections?: () => number;
  /** The stored audit log's writer. */
  readonly audit?: () => { readonly queued: number; readonly dropped: number } | undefined;
}

export interface GatewayMetricsOptions {
  readonly sources?: MetricsSources;
  /** Classifies request paths (see {@link routeGroups}). Default: every request is `other`. */
  readonly routeGroup?: (path: string) => RouteGroup;
  /** `stdio` or `http`: the `kind` label of the upstream connection gauge. */
  readonly upstreamKind?: string;
  /** Distinct tool names labelled before the rest count as `other`. Default 200. */
  readonly toolLabelMax?: number;
  /** Process metrics (CPU, memory, event-loop lag, GC). Default true. */
  readonly processMetrics?: boolean;
  /** A monotonic clock in milliseconds for latencies; default `performance.now`. */
  readonly monotonicNow?: () => number;
}

/** The shape of an interceptor on the upstream connection (see `bridge/interceptors.ts`). */
export interface UpstreamTimer {
  request(request: { readonly method: string }): undefined;
  response<A extends object>(request: { readonly method: string }, answer: A): A;
}

/**
 * Prometheus metrics of one gateway, in a registry of its own (several gateways can run in one process;
 * the library's global registry is never used). Every label takes a bounded set of values.
 */
export interface GatewayMetrics {
  readonly registry: Registry;
  /** The event-stream subscriber: auth failures, rate-limit rejections, tool calls, sessions, upstreams. */
  observeEvent(event: GatehouseEvent): void;
  /** One answered HTTP request (the edge calls it); an `ERR_STORE_UNAVAILABLE` error is also a store error. */
  observeRequest(path: string, status: number, error?: unknown): void;
  /** Counts `error` when it is `ERR_STORE_UNAVAILABLE` (answers rendered outside the HTTP edge: WebSocket). */
  observeError(error: unknown): void;
  /** Times every request the upstream answers, by method and outcome: put it innermost in the chain. */
  readonly upstreamTimer: UpstreamTimer;
  /** The Prometheus text exposition of this gateway's metrics and the process's. */
  scrape(): Promise<{ readonly contentType: string; readonly body: string }>;
}

/** MCP methods the upstream latency histogram names; anything else is `other`. */
const MCP_METHODS = new Set([
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/read',
  'resources/templates/list',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
  'tasks/get',
  'tasks/list',
  'tasks/result',
  'tasks/cancel',
]);

const LATENCY_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const AUTH_EVENT_TYPES = /^(?:login|consent|oauth\.)/;

/** Keeps the first `max` distinct values of a label; later new ones become `other`. */
function capped(max: number, longest = 128): (value: string) => string {
  const seen = new Set<string>();
  return (value) => {
    if (seen.has(value)) return value;
    if (seen.size >= max || value.length > longest || value === '') return 'other';
    seen.add(value);
    return value;
  };
}

/*
 * Process metrics are about the process, not a gateway: they are collected once per process, into a
 * registry of their own (collecting them per gateway would start one event-loop monitor per gateway and
 * never stop it), and appended to every gateway's scrape.
 */
let processRegistry: Registry | undefined;

function processMetricsRegistry(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, prefix: 'gatehouse_' });
  }
  return processRegistry;
}

/**
 * @example
 * const metrics = createGatewayMetrics({ sources: { verification: () => cache.stats() } });
 * events.subscribe((event) => metrics.observeEvent(event));
 * const { contentType, body } = await metrics.scrape();
 */
export function createGatewayMetrics(options: GatewayMetricsOptions = {}): GatewayMetrics {
  const registry = new Registry();
  const registers = [registry];
  const sources = options.sources ?? {};
  const routeGroup = options.routeGroup ?? (() => 'other' as const);
  const now = options.monotonicNow ?? (() => performance.now());
  const toolLabel = capped(options.toolLabelMax ?? 200);
  const reasonLabel = capped(100, 64);
  const limitLabel = capped(50, 64);
  const kindLabel = capped(20, 64);
  const upstreamReasonLabel = capped(50, 64);
  const processes = (options.processMetrics ?? true) ? processMetricsRegistry() : undefined;

  const requests = new Counter({
    name: 'gatehouse_http_requests_total',
    help: 'HTTP requests answered, by route group and status.',
    labelNames: ['route', 'status'] as const,
    registers,
  });
  const authFailures = new Counter({
    name: 'gatehouse_auth_failures_total',
    help: 'Refused authentications: guard refusals and failed sign-in, authorization and token requests.',
    labelNames: ['event', 'reason'] as const,
    registers,
  });
  const rateLimited = new Counter({
    name: 'gatehouse_rate_limit_rejections_total',
    help: 'Requests refused by a rate limit, by limit.',
    labelNames: ['limit'] as const,
    registers,
  });
  const toolCalls = new Counter({
    name: 'gatehouse_tool_calls_total',
    help: 'Tool calls by tool and outcome (success, error, failed); tools past the first 200 names are "other".',
    labelNames: ['tool', 'outcome'] as const,
    registers,
  });
  const upstreamLatency = new Histogram({
    name: 'gatehouse_upstream_request_duration_seconds',
    help: 'Time the upstream took to answer a request, by MCP method and outcome (result or error).',
    labelNames: ['method', 'outcome'] as const,
    buckets: LATENCY_BUCKETS_SECONDS,
    registers,
  });
  const upstreamFailures = new Counter({
    name: 'gatehouse_upstream_failures_total',
    help: 'Upstreams that could not be started or reached, by reason.',
    labelNames: ['reason'] as const,
    registers,
  });
  const sessionsOpened = new Counter({
    name: 'gatehouse_sessions_opened_total',
    help: 'Sessions opened, by transport kind.',
    labelNames: ['kind'] as const,
    registers,
  });
  const sessionsEnded = new Counter({
    name: 'gatehouse_sessions_ended_total',
    help: 'Sessions ended, by reason.',
    labelNames: ['reason'] as const,
    registers,
  });
  const storeErrors = new Counter({
    name: 'gatehouse_store_errors_total',
    help: 'Requests answered ERR_STORE_UNAVAILABLE (the store could not be reached).',
    registers,
  });

  // Read from what the gateway already counts, at scrape time.
  new Counter({
    name: 'gatehouse_token_verifications_total',
    help: 'Bearer-token verifications, by whether the verification cache answered (hit) or a verifier ran (miss).',
    labelNames: ['cache'] as const,
    registers,
    collect() {
      const stats = sources.verification?.();
      this.reset();
      this.inc({ cache: 'hit' }, stats?.hits ?? 0);
      this.inc({ cache: 'miss' }, stats?.misses ?? 0);
    },
  });
  new Gauge({
    name: 'gatehouse_token_cache_hit_ratio',
    help: 'Share of bearer-token verifications answered by the verification cache since start (0 to 1).',
    registers,
    collect() {
      const stats = sources.verification?.();
      const total = (stats?.hits ?? 0) + (stats?.misses ?? 0);
      this.set(total === 0 ? 0 : (stats?.hits ?? 0) / total);
    },
  });
  new Gauge({
    name: 'gatehouse_active_sessions',
    help: 'Sessions holding an upstream on this instance.',
    registers,
    collect() {
      this.set(sources.activeSessions?.() ?? 0);
    },
  });
  new Gauge({
    name: 'gatehouse_upstream_connections',
    help: 'Upstream connections held by this instance (for a stdio upstream: child processes).',
    labelNames: ['kind'] as const,
    registers,
    collect() {
      this.set({ kind: options.upstreamKind ?? 'none' }, sources.upstreamConnections?.() ?? 0);
    },
  });
  new Counter({
    name: 'gatehouse_audit_dropped_total',
    help: 'Audit entries dropped because the audit queue was full (the store was slow or down).',
    registers,
    collect() {
      this.reset();
      this.inc(sources.audit?.()?.dropped ?? 0);
    },
  });
  new Gauge({
    name: 'gatehouse_audit_queue_entries',
    help: 'Audit entries waiting to be written to the store.',
    registers,
    collect() {
      this.set(sources.audit?.()?.queued ?? 0);
    },
  });

  const started = new WeakMap<object, number>();

  function observeError(error: unknown): void {
    if (error instanceof GatehouseError && error.code === 'ERR_STORE_UNAVAILABLE') storeErrors.inc();
  }

  return {
    registry,
    observeEvent(event) {
      switch (event.type) {
        case 'guard.refused':
          authFailures.inc({ event: event.type, reason: reasonLabel(event.reason ?? event.error) });
          return;
        case 'ratelimit.rejected':
          rateLimited.inc({ limit: limitLabel(event.limit) });
          return;
        case 'tool.called':
          toolCalls.inc({ tool: toolLabel(event.tool), outcome: event.outcome });
          return;
        case 'session.opened':
          sessionsOpened.inc({ kind: kindLabel(event.kind) });
          return;
        case 'session.ended':
          sessionsEnded.inc({ reason: kindLabel(event.reason) });
          return;
        case 'upstream.failed':
          upstreamFailures.inc({ reason: upstreamReasonLabel(event.reason) });
          return;
        default:
          if (AUTH_EVENT_TYPES.test(event.type) && 'outcome' in event && event.outcome === 'failure') {
            const { reason, error } = event as { readonly reason?: string; readonly error?: string };
            authFailures.inc({ event: event.type, reason: reasonLabel(reason ?? error ?? 'unknown') });
          }
      }
    },
    observeRequest(path, status, error) {
      requests.inc({ route: routeGroup(path), status: String(status) });
      observeError(error);
    },
    observeError,
    upstreamTimer: {
      request(request) {
        started.set(request, now());
        return undefined;
      },
      response(request, answer) {
        const at = started.get(request);
        if (at === undefined) return answer;
        started.delete(request);
        upstreamLatency.observe(
          {
            method: MCP_METHODS.has(request.method) ? request.method : 'other',
            outcome: 'error' in answer ? 'error' : 'result',
          },
          Math.max(0, now() - at) / 1000,
        );
        return answer;
      },
    },
    async scrape() {
      const own = await registry.metrics();
      const process = processes === undefined ? '' : await processes.metrics();
      return { contentType: registry.contentType, body: process === '' ? own : `${own}\n${process}` };
    },
  };
}

/**
 * Answers a scrape: `GET`/`HEAD` only; with `bearerToken`, only for `Authorization: Bearer <bearerToken>`
 * (compared in constant time), else 401 with `WWW-Authenticate: Bearer`.
 */
export function metricsResponder(
  metrics: GatewayMetrics,
  bearerToken: string | undefined,
): (method: string, authorization: string | undefined) => Promise<Response> {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  const expected = bearerToken === undefined ? undefined : digest(bearerToken);
  return async (method, authorization) => {
    if (method !== 'GET' && method !== 'HEAD') {
      return new Response('method not allowed\n', { status: 405, headers: { allow: 'GET, HEAD' } });
    }
    if (expected !== undefined) {
      const match = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
      // Digests of equal length: the comparison takes the same time whatever was sent.
      if (match?.[1] === undefined || !timingSafeEqual(digest(match[1]), expected)) {
        return new Response('unauthorized\n', {
          status: 401,
          headers: { 'www-authenticate': 'Bearer realm="gatehouse-metrics"', 'cache-control': 'no-store' },
        });
      }
    }
    const { contentType, body } = await metrics.scrape();
    return new Response(method === 'HEAD' ? null : body, {
      status: 200,
      headers: { 'content-type': contentType, 'cache-control': 'no-store' },
    });
  };
}

/** The metrics port's server (`metrics.port`). */
export interface MetricsServer {
  /** The port bound (useful with `metrics.port: 0`). */
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `respond` at `path` on a port of its own (every other path: 404). Resolves once listening. */
export async function serveMetrics(options: {
  readonly respond: (method: string, authorization: string | undefined) => Promise<Response>;
  readonly path: string;
  readonly host: string;
  readonly port: number;
  /** Whether the request's `Host` may be served (DNS-rebinding protection); absent: any. */
  readonly allowsHost?: (host: string | undefined) => boolean;
}): Promise<MetricsServer> {
  const server = createServer((request, reply) => {
    const path = new URL(request.url ?? '/', 'http://metrics').pathname;
    const answer =
      options.allowsHost?.(request.headers.host) === false
        ? Promise.resolve(new Response('host not allowed\n', { status: 403 }))
        : path === options.path
          ? options.respond(request.method ?? 'GET', request.headers.authorization)
          : Promise.resolve(new Response('not found\n', { status: 404 }));
    answer
      .then(async (response) => {
        const headers: Record<string, string> = {};
        response.headers.forEach((value, name) => {
          headers[name] = value;
        });
        reply.writeHead(response.status, headers);
        reply.end(Buffer.from(await response.arrayBuffer()));
      })
      .catch(() => {
        if (!reply.headersSent) reply.writeHead(500);
        reply.end();
      });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
