import type { MiddlewareHandler } from 'hono';
import type { Principal } from '../identity/principal.js';
import { clientAddressOf, type GatehouseEnv } from '../net/request-context.js';
import { markFailed, SpanKind, type Tracing } from '../ops/tracing.js';

/**
 * The server span of one HTTP request to an MCP route (`POST /mcp`), opened before the guard so the guard's
 * check, the store calls and each MCP request's own span are its children. Its parent is the caller's W3C
 * `traceparent` header, when valid. Only the route, the status, the session id and the user's subject are
 * recorded: never a header's value (the bearer token), never the body.
 */
export function requestSpan(tracing: Tracing, route: string): MiddlewareHandler<GatehouseEnv> {
  return async (c, next) => {
    const parent = tracing.remoteParent({
      traceparent: c.req.header('traceparent'),
      tracestate: c.req.header('tracestate'),
    });
    const method = c.req.method;
    await tracing.inSpan(
      `${method} ${route}`,
      {
        kind: SpanKind.SERVER,
        ...(parent !== undefined && { parent }),
        attributes: {
          'http.request.method': method,
          'http.route': route,
          'client.address': clientAddressOf(c),
        },
      },
      async (span) => {
        await next();
        const status = c.res.status;
        span.setAttribute('http.response.status_code', status);
        const sessionId = c.res.headers.get('mcp-session-id') ?? c.req.header('mcp-session-id');
        if (sessionId !== undefined && sessionId !== null) span.setAttribute('mcp.session.id', sessionId);
        const principal = (c.get as (key: string) => unknown)('principal') as Principal | undefined;
        if (principal !== undefined) span.setAttribute('enduser.id', principal.subject);
        // HTTP semantic conventions: a server span fails on 5xx; refusals show on the guard's span.
        if (status >= 500) markFailed(span, String(status));
      },
    );
  };
}
