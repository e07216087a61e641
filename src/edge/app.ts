import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Hono } from 'hono';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { type RenderContext, renderJsonRpcError } from '../errors/render.js';
import type { ClientAddressResolver } from '../net/client-address.js';
import { type GatehouseEnv, requestIdOf } from '../net/request-context.js';
import type { Logger } from '../ops/logger.js';

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
    c.set('requestId', newRequestId());
    c.set(
      'clientAddress',
      parts.clientAddress(incoming?.socket?.remoteAddress, (name) => c.req.header(name)),
    );
    await next();
  });
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
