import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { type AddressInfo, Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { serve } from '@hono/node-server';
import type { GatehouseConfig } from '../config/schema.js';
import { GATEHOUSE_ERROR_STATUS } from '../errors/gatehouse-error.js';
import { jsonRpcError } from '../errors/render.js';
import { createGateway, type Gateway, type GatewayDeps } from './gateway.js';

/** How a drain ended. */
export interface ShutdownOutcome {
  /** True when everything finished before the deadline; false when something was cut off. */
  readonly complete: boolean;
  /** Where the deadline struck: waiting for work in flight, or closing streams, upstreams and stores. */
  readonly phase?: 'in-flight' | 'closing';
  /** The HTTP requests still unanswered at the deadline (`METHOD /path`, no query string). */
  readonly requests: readonly string[];
  /** WebSocket and legacy SSE calls still waiting for the upstream at the deadline. */
  readonly upstreamCalls: number;
}

export interface RunningGateway {
  readonly gateway: Gateway;
  /** The port actually bound (useful with `server.port: 0`). */
  readonly port: number;
  /** Closes at once: open requests and streams are cut, upstreams end, stores close. After `shutdown`, waits for it. */
  close(): Promise<void>;
  /**
   * Drains, then closes: stops accepting connections; answers new requests on kept-alive connections 503
   * with `Connection: close` and `Retry-After` (`/readyz` says `draining`); lets requests and upstream calls
   * in flight finish; then closes WebSocket and SSE streams politely (1001, end of stream), ends every
   * upstream, flushes the audit queue and closes the stores — all within `timeoutMs` (default
   * `server.shutdownTimeoutMs`). Past it, every connection is dropped and the outcome says what was cut off;
   * the caller exits. Calling it again returns the same drain.
   */
  shutdown(timeoutMs?: number): Promise<ShutdownOutcome>;
}

/** Seconds a client is told to wait before retrying (on another instance, behind a load balancer). */
const DRAIN_RETRY_AFTER_SECONDS = 5;
/** How often a drain looks whether the work in flight has finished, in milliseconds. */
const DRAIN_POLL_MS = 25;
const HEALTH_PATHS = new Set(['/healthz', '/readyz']);

/** A health answer (small, read whole) that closes its connection. */
async function withConnectionClose(response: Response): Promise<Response> {
  const headers = new Headers(response.headers);
  headers.set('connection', 'close');
  return new Response(await response.text(), { status: response.status, headers });
}

function shuttingDown(): Response {
  return jsonRpcError(
    GATEHOUSE_ERROR_STATUS.ERR_SHUTTING_DOWN,
    -32000,
    'Gatehouse is shutting down; retry shortly',
    { code: 'ERR_SHUTTING_DOWN' },
    new Headers({
      'content-type': 'application/json',
      'retry-after': String(DRAIN_RETRY_AFTER_SECONDS),
      connection: 'close',
    }),
  );
}

/**
 * Binds the configured address, then assembles the gateway with the bound port so every published URL
 * (resource, metadata, issuer) is right even when the port was chosen by the OS.
 */
export async function serveGateway(config: GatehouseConfig, deps: GatewayDeps = {}): Promise<RunningGateway> {
  let handler: ((request: Request, env: unknown) => Response | Promise<Response>) | undefined;
  let draining = false;
  const server = serve({
    // The node bindings (`env.incoming`) carry the TCP peer: the edge reads the client's address from it.
    fetch: async (request: Request, env: unknown) => {
      if (handler === undefined)
        return new Response('starting', { status: 503, headers: { 'retry-after': '1' } });
      if (!draining) return handler(request, env);
      // Draining: a request on a kept-alive connection is refused (the balancer retries elsewhere), except
      // the health checks, which say so themselves; every answer closes its connection.
      if (!HEALTH_PATHS.has(new URL(request.url).pathname)) return shuttingDown();
      return withConnectionClose(await handler(request, env));
    },
    hostname: config.server.host,
    port: config.server.port,
    serverOptions: {
      // Explicit limits on every route: a client that trickles its headers or body is cut off (408)
      // instead of holding a connection open for minutes.
      headersTimeout: config.server.headersTimeoutMs,
      requestTimeout: config.server.requestTimeoutMs,
      // How often Node checks those limits (its default, 30 s, would let a short limit run long).
      connectionsCheckingInterval: Math.min(1_000, config.server.headersTimeoutMs),
    },
  }) as Server;
  // Every request until its response closes: what a drain waits for (event streams aside).
  const inFlight = new Map<ServerResponse, IncomingMessage>();
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    inFlight.set(response, request);
    response.once('close', () => inFlight.delete(response));
  });
  let upgrade: ((request: IncomingMessage, socket: Duplex, head: Buffer) => void) | undefined;
  // WebSocket upgrades never reach the fetch handler; without an endpoint (starting, or disabled) refuse them.
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (draining) {
      socket.end(
        `HTTP/1.1 503 Service Unavailable\r\nretry-after: ${DRAIN_RETRY_AFTER_SECONDS}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
      );
      return;
    }
    if (upgrade !== undefined) return upgrade(request, socket, head);
    socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('listening', () => resolve((server.address() as AddressInfo).port));
    server.once('error', reject);
  });
  let gateway: Gateway;
  try {
    gateway = await createGateway(config, deps, port);
  } catch (error) {
    server.close();
    throw error;
  }
  handler = (request, env) => gateway.app.fetch(request, env);
  const websocket = gateway.websocket;
  if (websocket !== undefined)
    upgrade = (request, socket, head) => websocket.handleUpgrade(request, socket, head);
  gateway.start();

  // A GET on the MCP endpoint or the legacy SSE path opens an event stream that never ends by itself:
  // closed at the end of the drain, not waited for.
  const streamPaths = new Set([config.server.mcpPath, config.legacySse.ssePath]);
  const isEventStream = (request: IncomingMessage) =>
    request.method === 'GET' &&
    ((request.headers.accept ?? '').includes('text/event-stream') ||
      streamPaths.has((request.url ?? '').split('?')[0] ?? ''));
  const busyRequests = () =>
    [...inFlight.values()]
      .filter((request) => !isEventStream(request))
      .map((request) => `${request.method} ${(request.url ?? '').split('?')[0]}`);

  async function drain(timeoutMs: number): Promise<ShutdownOutcome> {
    draining = true;
    gateway.drain.begin();
    // Stop accepting connections, but keep the kept-alive ones: http.Server#close would drop idle ones at
    // once, and a request racing onto one would meet a reset instead of a 503 saying to go elsewhere.
    NetServer.prototype.close.call(server);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), timeoutMs);
    });
    const idle = new Promise<'done'>((resolve) => {
      const look = () => {
        if (busyRequests().length === 0 && gateway.drain.callsInFlight === 0) resolve('done');
        else if (timer !== undefined) setTimeout(look, DRAIN_POLL_MS);
      };
      look();
    });
    const cutOff = (phase: 'in-flight' | 'closing'): ShutdownOutcome => {
      const outcome = {
        complete: false,
        phase,
        requests: busyRequests(),
        upstreamCalls: gateway.drain.callsInFlight,
      };
      server.closeAllConnections();
      return outcome;
    };
    try {
      if ((await Promise.race([idle, deadline])) === 'deadline') return cutOff('in-flight');
      // Everything answered: close streams politely (WebSocket 1001 first: upgraded sockets are no longer
      // the HTTP server's), end every upstream, flush the audit queue, close the stores.
      const closing = (async () => {
        await gateway.websocket?.close();
        await gateway.close();
        return 'done' as const;
      })();
      if ((await Promise.race([closing, deadline])) === 'deadline') return cutOff('closing');
      server.closeAllConnections();
      return { complete: true, requests: [], upstreamCalls: 0 };
    } finally {
      clearTimeout(timer);
      timer = undefined;
    }
  }

  let shutdown: Promise<ShutdownOutcome> | undefined;
  return {
    gateway,
    port,
    shutdown(timeoutMs = config.server.shutdownTimeoutMs) {
      shutdown ??= drain(timeoutMs);
      return shutdown;
    },
    async close() {
      // After a drain: nothing is left to close, unless its deadline struck before the closing began.
      if (shutdown !== undefined) {
        const outcome = await shutdown;
        server.closeAllConnections();
        if (outcome.phase === 'in-flight') await gateway.close();
        return;
      }
      // Upgraded sockets are no longer the HTTP server's to close: close them first, or close() would wait.
      await gateway.websocket?.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Long-lived SSE streams would hold close() open forever.
        server.closeAllConnections();
      });
      await gateway.close();
    },
  };
}
