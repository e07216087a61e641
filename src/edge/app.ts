import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { JSONRPCRequest } from '@modelcontextprotocol/server';
import { Hono } from 'hono';
import type { InterceptorChain } from '../bridge/interceptors.js';
import type { UpstreamConnector } from '../bridge/upstream.js';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { type RenderContext, renderJsonRpcError } from '../errors/render.js';
import type { ClientAddressResolver } from '../net/client-address.js';
import type { HostPolicy } from '../net/host.js';
import { clientAddressOf, type GatehouseEnv, requestIdOf } from '../net/request-context.js';
import type { EventBus } from '../ops/events.js';
import type { Logger } from '../ops/logger.js';
import { captureRequestScope, outsideRequestScope, runInRequestScope } from '../ops/request-scope.js';
import { refuse as refuseUpgrade, type WebSocketEndpoint } from '../transports/websocket.js';

/** What `@hono/node-server` hands the app beside each request. */
interface NodeBindings {
  readonly incoming?: IncomingMessage;
}

export interface EdgeParts {
  readonly clientAddress: ClientAddressResolver;
  readonly logger: Logger;
  /**
   * The sub-apps, in order. Each brings its own error renderer (Hono's `route()` keeps it), so an error
   * is answered in the shape its caller reads: JSON-RPC on the MCP endpoint, RFC 6749 JSON on the OAuth
   * endpoints, a page in the browser.
   */
  readonly apps: readonly Hono<GatehouseEnv>[];
  /**
   * Told about every request once it is answered (metrics): its path, the status answered, and the error
   * a sub-app's renderer answered for, if any.
   */
  readonly observe?: ((path: string, status: number, error: unknown) => void) | undefined;
  /** The DNS-rebinding check every request passes before any sub-app runs; none when absent. */
  readonly hosts?: HostCheck | undefined;
}

/** What the DNS-rebinding check needs: the policy, its exemptions, and where a refusal is reported. */
export interface HostCheck {
  readonly policy: HostPolicy;
  /** Paths answered whatever `Host` says: health checks, which container probes call by IP address. */
  readonly exempt: ReadonlySet<string>;
  readonly events: EventBus;
  readonly logger: Logger;
}

/** Longest refused `Host` value quoted in the log; a header can be kilobytes long. */
const LOGGED_HOST_CHARS = 100;

/**
 * Refuses a request whose `Host` does not name this gateway (see {@link HostPolicy}): 400 without one
 * (HTTP/1.1 requires it), 403 `ERR_HOST_FORBIDDEN` otherwise. It runs before authentication, so a
 * rebinding page learns nothing, not even whether a token is valid. The refused value is logged, bounded,
 * and never sent back; the refusal is reported as `guard.refused`.
 */
function checkHost(check: HostCheck, host: string | undefined, ip: string, transport: string): void {
  if (host !== undefined && check.policy.allows(host)) return;
  const error =
    host === undefined
      ? new GatehouseError('ERR_BAD_REQUEST', 'Missing Host header')
      : new GatehouseError('ERR_HOST_FORBIDDEN', 'Host not allowed');
  check.logger.warn(
    { host: host?.slice(0, LOGGED_HOST_CHARS), ip, allowed: check.policy.hostnames },
    'request refused: its Host is not server.publicUrl’s hostname nor in server.allowedHosts',
  );
  check.events.emit({
    type: 'guard.refused',
    error: error.code,
    reason: host === undefined ? 'missing_host' : 'host_not_allowed',
    status: error.status,
    ip,
    transport,
  });
  throw error;
}

/** 96 random bits, base64url: enough to find one request in the logs, nothing to guess. */
export function newRequestId(): string {
  return randomBytes(12).toString('base64url');
}

/**
 * The edge: one Hono app on Web-standard `Request`/`Response`. Before any sub-app runs, it gives the
 * request its id and reads the client's address once — from the TCP peer, or from the forwarding header
 * when that peer is a trusted proxy — so every limit, audit line and error answer uses the same one.
 * Served in-process (`app.request`) there is no peer: the address is `unknown` unless the caller passes
 * node bindings.
 */
export function createEdgeApp(parts: EdgeParts): Hono<GatehouseEnv> {
  const app = new Hono<GatehouseEnv>();
  const fallback = (requestId: string | undefined): RenderContext => ({ logger: parts.logger, requestId });
  app.onError((error, c) => renderJsonRpcError(error, fallback(requestIdOf(c))));
  app.notFound((c) =>
    renderJsonRpcError(new GatehouseError('ERR_NOT_FOUND', 'Not found'), fallback(requestIdOf(c))),
  );
  app.use('*', async (c, next) => {
    const incoming = (c.env as NodeBindings | undefined)?.incoming;
    const requestId = newRequestId();
    const clientAddress = parts.clientAddress(incoming?.socket?.remoteAddress, (name) => c.req.header(name));
    c.set('requestId', requestId);
    c.set('clientAddress', clientAddress);
    // Everything the request runs — its log lines, the events it causes — knows which request it is.
    await runInRequestScope({ requestId, clientAddress }, next);
    try {
      c.res.headers.set('x-request-id', requestId);
    } catch {
      // A response with immutable headers (`Response.redirect`) goes out without it.
    }
    parts.observe?.(c.req.path, c.res.status, c.error);
  });
  const hosts = parts.hosts;
  if (hosts !== undefined) {
    app.use('*', async (c, next) => {
      if (!hosts.exempt.has(c.req.path)) {
        // Served in-process (`app.request`) a request may carry no `Host`: its URL's host stands in.
        const served = (c.env as NodeBindings | undefined)?.incoming !== undefined;
        const host = c.req.header('host') ?? (served ? undefined : new URL(c.req.url).host);
        checkHost(hosts, host, clientAddressOf(c), 'http');
      }
      await next();
    });
  }
  for (const sub of parts.apps) app.route('/', sub);
  return app;
}

/** The client's address of a WebSocket upgrade request, by the same rules as every HTTP request. */
export function upgradeClientAddress(resolver: ClientAddressResolver): (request: IncomingMessage) => string {
  return (request) =>
    resolver(request.socket.remoteAddress, (name) => {
      const value = request.headers[name];
      return Array.isArray(value) ? value.join(', ') : value;
    });
}

/**
 * `endpoint`, refusing an upgrade whose `Host` does not name this gateway before it reads anything else
 * (upgrades never pass the edge app's middleware). `render` answers the refusal as the endpoint answers
 * its own.
 */
export function withUpgradeHostCheck(
  endpoint: WebSocketEndpoint,
  hosts: HostCheck,
  clientAddress: (request: IncomingMessage) => string,
  render: (error: unknown) => Response,
): WebSocketEndpoint {
  return {
    ...endpoint,
    handleUpgrade(request, socket, head) {
      try {
        checkHost(hosts, request.headers.host, clientAddress(request), 'websocket');
      } catch (error) {
        socket.on('error', () => socket.destroy());
        refuseUpgrade(socket, render(error));
        return;
      }
      endpoint.handleUpgrade(request, socket, head);
    },
  };
}

/**
 * `endpoint`, with each upgrade handled inside a request scope of its own (a new request id, the client's
 * address): the handshake's log lines and events (authentication, a refusal, the session opened) carry
 * them. Later messages on the socket arrive outside any request and carry no request id.
 */
export function withUpgradeScope(
  endpoint: WebSocketEndpoint,
  clientAddress: (request: IncomingMessage) => string,
): WebSocketEndpoint {
  return {
    ...endpoint,
    handleUpgrade: (request, socket, head) =>
      runInRequestScope({ requestId: newRequestId(), clientAddress: clientAddress(request) }, () =>
        endpoint.handleUpgrade(request, socket, head),
      ),
  };
}

/**
 * `chain`, with each answer's hooks (tool-call events, timings) run in the request scope its request was
 * sent from: the answer itself arrives on the upstream's stream, outside that request.
 */
export function answersInCallerScope(chain: InterceptorChain): InterceptorChain {
  const callers = new WeakMap<JSONRPCRequest, <T>(fn: () => T) => T>();
  return {
    request(request, call) {
      callers.set(request, captureRequestScope());
      return chain.request(request, call);
    },
    response(request, answer, call) {
      const inCallerScope = callers.get(request);
      if (inCallerScope === undefined) return chain.response(request, answer, call);
      callers.delete(request);
      return inCallerScope(() => chain.response(request, answer, call));
    },
    capabilities: (capabilities) => chain.capabilities(capabilities),
  };
}

/**
 * `connector`, whose transports start outside any request scope: a stdio child spawned while serving one
 * request lives on, and its output and exit belong to no request in particular. (The transport is
 * started in place, not wrapped, so what the bridge knows of its class still holds.)
 */
export function upstreamsOutsideRequests(connector: UpstreamConnector): UpstreamConnector {
  return {
    ...connector,
    open(identity, streams) {
      const transport = connector.open(identity, streams);
      const start = transport.start.bind(transport);
      transport.start = () => outsideRequestScope(start);
      return transport;
    },
  };
}
