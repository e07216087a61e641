import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuthInfo } from '@modelcontextprotocol/server';
import type { Env, Hono } from 'hono';
import { type ConfigOverrides, loadConfig } from '../config/load.js';
import type { Diagnostics } from '../diagnostics/tools.js';
import { type GatehouseContext, type GatehouseSessionRef, runWithContext } from '../downstream/context.js';
import { createGateway, type Gateway, type GatewayDeps } from '../edge/gateway.js';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { type Principal, principalKey } from '../identity/principal.js';
import { systemClock } from '../ops/clock.js';
import {
  createLibraryDiagnostics,
  type DiagnosticsToolHost,
  registerDiagnosticsTools,
} from './diagnostics-tools.js';
import { createSessionOwners } from './session-owners.js';

/**
 * A Web-standard MCP handler, such as `createMcpHandler(...).fetch` from `@modelcontextprotocol/server` or a
 * sessionful `WebStandardStreamableHTTPServerTransport.handleRequest`. It receives the caller as
 * `authInfo` (which the SDK hands to tools as `ctx.http.authInfo`); `authInfo.token` is always `''` and
 * the request arrives without its `Authorization` header, so the client's token can never be forwarded.
 */
export type McpFetchHandler = (request: Request, options: { authInfo: AuthInfo }) => Promise<Response>;

/** Express/Connect-style middleware (for an SDK v1 `StreamableHTTPServerTransport`). */
export type NodeMiddleware = (
  req: IncomingMessage & { auth?: AuthInfo },
  res: ServerResponse,
  next: (error?: unknown) => void,
) => void;

export interface CreateGatehouseOptions {
  /**
   * The configuration, shaped like a config file (the one schema; `secretFile`s are read). `upstream`
   * must be absent: in library mode the MCP server runs in this process. Set `server.publicUrl` to the
   * URL clients use: the MCP endpoint (`publicUrl` + `server.mcpPath`) is the token audience.
   */
  readonly config?: ConfigOverrides;
  /** Environment for `GATEHOUSE_*` overrides and `*_FILE` secrets. Default: none (the library reads no `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Clock, logger, stores and other injections, as for `createGateway`. */
  readonly deps?: Omit<GatewayDeps, 'inProcess' | 'defaultUpstream'>;
  /** Most MCP sessions whose owner is remembered (least recently used dropped first). Default 100 000. */
  readonly maxSessionBindings?: number;
}

export interface Gatehouse {
  /**
   * The gateway assembled for library mode: verifiers, verification cache, revocation, sessions, signer and
   * (when enabled) the authorization server. `gateway.app` serves discovery, JWKS, health and OAuth routes
   * and no MCP endpoint of its own.
   */
  readonly gateway: Gateway;
  /**
   * Wraps an MCP handler: checks Origin, authenticates the bearer token (401/403 with the same challenges as
   * the gateway), keeps each `Mcp-Session-Id` bound to the user who opened it (404 for anyone else), then
   * runs `handler` inside `runWithContext({ principal, session })` so tools can call `currentPrincipal()`.
   * The handler's request has no `Authorization` header: tools never see the client's token.
   */
  protect(handler: McpFetchHandler): (request: Request) => Promise<Response>;
  /**
   * The same guard as Node middleware for SDK v1 (`transport.handleRequest(req, res, req.body)` in the next
   * handler, which reads the caller from `req.auth` or `currentPrincipal()`). Register it after the body
   * parser, so the handler runs in this request's context. Sessions are bound as in {@link protect}, and
   * the `Authorization` header is removed from `req` once verified.
   */
  nodeMiddleware(): NodeMiddleware;
  /**
   * Opt-in: adds the gateway's `gatehouse_whoami`, `gatehouse_validate_token` and `gatehouse_sessions` tools
   * to your `McpServer` (SDK v2, or v1's `McpServer`), whatever `diagnostics.enabled` says. The gateway's
   * code answers them (the SDK first checks that `token` is a string), for the caller of the request in
   * progress only: no token, secret or other user's data. Sessions listed are the in-process server's MCP
   * sessions this user opened; outside a request Gatehouse authenticated, a call is an error.
   *
   * @example
   * ```ts
   * const mcp = createMcpHandler(() => {
   *   const server = new McpServer({ name: 'notes', version: '1.0.0' });
   *   gatehouse.registerDiagnosticsTools(server);
   *   return server;
   * });
   * ```
   */
  registerDiagnosticsTools(server: DiagnosticsToolHost): void;
  /**
   * Adds Gatehouse's routes to your Hono app: protected-resource metadata (both forms), JWKS, `/healthz`,
   * `/readyz` and, when enabled, the authorization server; with `handler`, also the protected MCP
   * endpoint at `server.mcpPath`. Routes registered on `app` earlier win.
   */
  mount<E extends Env>(app: Hono<E>, handler?: McpFetchHandler): void;
  /** Starts background work (session sweeper, signing-key refresh). */
  start(): void;
  close(): Promise<void>;
}

const SESSION_HEADER = 'mcp-session-id';

/**
 * Library mode: protects an MCP server built with the TypeScript SDK in this process.
 *
 * @example
 * ```ts
 * import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
 * import { Hono } from 'hono';
 * import { createGatehouse, currentPrincipal } from 'gatehouse';
 *
 * const mcp = createMcpHandler(() => {
 *   const server = new McpServer({ name: 'notes', version: '1.0.0' });
 *   server.registerTool('whoami', {}, async () => ({
 *     content: [{ type: 'text', text: currentPrincipal().subject }],
 *   }));
 *   return server;
 * });
 * const gatehouse = await createGatehouse({ config: { server: { publicUrl: 'https://notes.example.com' } } });
 * const app = new Hono();
 * gatehouse.mount(app, mcp.fetch);   // or: app.all('/mcp', (c) => gatehouse.protect(mcp.fetch)(c.req.raw))
 * gatehouse.start();
 * ```
 */
export async function createGatehouse(options: CreateGatehouseOptions = {}): Promise<Gatehouse> {
  const config = loadConfig({ env: options.env ?? {}, overrides: options.config ?? {} });
  if (config.upstream !== undefined) {
    throw new GatehouseError(
      'ERR_CONFIG_INVALID',
      'upstream: library mode serves an in-process MCP server; remove upstream (or run the gateway)',
    );
  }
  const deps = options.deps ?? {};
  const clock = deps.clock ?? systemClock;
  const gateway = await createGateway(config, { ...deps, inProcess: true });
  const owners = createSessionOwners({
    clock,
    idleTimeoutMs: config.sessions.idleTimeoutMs,
    absoluteLifetimeMs: config.sessions.absoluteLifetimeMs,
    maxEntries: options.maxSessionBindings ?? 100_000,
  });
  const { logger } = gateway;
  let diagnostics: Diagnostics | undefined;

  /** Authenticates and checks the session; returns the context to run in, or the refusal to send. */
  async function admit(request: Request): Promise<GatehouseContext | Response> {
    let principal: Principal;
    let cacheHit: boolean;
    try {
      ({ principal, cacheHit } = await gateway.authenticate(request));
    } catch (error) {
      return gateway.renderError(error);
    }
    const sessionId = request.headers.get(SESSION_HEADER);
    if (sessionId !== null && !owners.owns(sessionId, principalKey(principal))) {
      logger.info({ user: principal.subject }, 'session id refused: not this user’s');
      return gateway.renderError(new GatehouseError('ERR_SESSION_NOT_FOUND', 'Session not found'));
    }
    const session: GatehouseSessionRef | undefined =
      sessionId === null ? undefined : { id: sessionId, kind: 'streamable-http' };
    // Brokered credentials are cached per user here: in-process sessions are the SDK's, not Gatehouse's
    // session store, and the cache never hands out an entry past its own `expiresAt`.
    let credentials: unknown;
    if (gateway.credentials !== undefined) {
      try {
        credentials = (await gateway.credentials.getCredentials(principal, undefined)).values;
      } catch (error) {
        return gateway.renderError(error);
      }
    }
    return {
      principal,
      cacheHit,
      ...(session !== undefined && { session }),
      ...(credentials !== undefined && { credentials }),
    };
  }

  /** After the handler answered: bind a session it opened, forget one it ended. */
  function settle(request: Request, context: GatehouseContext, status: number, issued: string | null): void {
    if (status >= 400) return;
    if (context.session !== undefined) {
      if (request.method === 'DELETE') owners.release(context.session.id);
      return;
    }
    if (issued !== null) owners.bind(issued, principalKey(context.principal));
  }

  function protect(handler: McpFetchHandler): (request: Request) => Promise<Response> {
    return async (request) => {
      const admitted = await admit(request);
      if (admitted instanceof Response) return admitted;
      const authInfo = toAuthInfo(admitted.principal);
      const forwarded = withoutAuthorization(request);
      const response = await runWithContext(admitted, () => handler(forwarded, { authInfo }));
      settle(request, admitted, response.status, response.headers.get(SESSION_HEADER));
      return response;
    };
  }

  function nodeMiddleware(): NodeMiddleware {
    return (req, res, next) => {
      const request = toHeadersOnlyRequest(req);
      admit(request)
        .then(async (admitted) => {
          if (admitted instanceof Response) {
            await writeNodeResponse(res, admitted);
            return;
          }
          req.auth = toAuthInfo(admitted.principal);
          dropAuthorization(req);
          // The session id a handler issues is only visible as the response headers go out.
          const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
          (res as { writeHead: (...args: unknown[]) => ServerResponse }).writeHead = (...args: unknown[]) => {
            const status = typeof args[0] === 'number' ? args[0] : res.statusCode;
            settle(request, admitted, status, sessionIdOf(res, args));
            return writeHead(...args);
          };
          runWithContext(admitted, () => next());
        })
        // As Express does for a handler that throws: the error goes to the error middleware, never unhandled.
        .catch((error: unknown) => next(error));
    };
  }

  return {
    gateway,
    protect,
    nodeMiddleware,
    registerDiagnosticsTools(server) {
      diagnostics ??= createLibraryDiagnostics(gateway, owners, clock);
      registerDiagnosticsTools(server, diagnostics);
    },
    mount(app, handler) {
      if (handler !== undefined) {
        const guarded = protect(handler);
        app.all(config.server.mcpPath, (c) => guarded(c.req.raw));
      }
      app.route('/', gateway.app);
    },
    start: () => gateway.start(),
    close: () => gateway.close(),
  };
}

function toAuthInfo(principal: Principal): AuthInfo {
  return {
    token: '',
    clientId: principal.clientId ?? '',
    scopes: [...principal.scopes],
    expiresAt: principal.expiresAt,
    extra: { subject: principal.subject, issuer: principal.issuer, verifier: principal.verifier },
  };
}

/** The request the handler sees: the same, minus the client's token (the SDKs show tools the headers). */
function withoutAuthorization(request: Request): Request {
  if (!request.headers.has('authorization')) return request;
  const headers = new Headers(request.headers);
  headers.delete('authorization');
  return new Request(request.url, {
    method: request.method,
    headers,
    body: request.body,
    signal: request.signal,
    // A streamed body requires half-duplex (fetch spec); GET and HEAD have none.
    ...(request.body !== null && { duplex: 'half' }),
  });
}

/** SDK v1 builds the tool's `requestInfo.headers` from `req`; the verified token stops here. */
function dropAuthorization(req: IncomingMessage): void {
  // Node derives `headers` and `headersDistinct` from `rawHeaders` once, by its original length: both
  // are materialised before `rawHeaders` shrinks.
  delete req.headers.authorization;
  delete req.headersDistinct.authorization;
  const kept: string[] = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] as string;
    if (name.toLowerCase() !== 'authorization') kept.push(name, req.rawHeaders[i + 1] as string);
  }
  req.rawHeaders = kept;
}

/** Authentication reads headers only, so the Node request's body stays unread for the handler. */
function toHeadersOnlyRequest(req: IncomingMessage): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
  }
  return new Request(new URL(req.url ?? '/', 'http://in-process.invalid'), {
    method: req.method ?? 'GET',
    headers,
  });
}

async function writeNodeResponse(res: ServerResponse, response: Response): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  res.writeHead(response.status, headers);
  res.end(Buffer.from(await response.arrayBuffer()));
}

/** `writeHead(status, [message], [headers])` may carry headers that `getHeader` never sees. */
function sessionIdOf(res: ServerResponse, args: readonly unknown[]): string | null {
  for (const arg of args) {
    if (typeof arg !== 'object' || arg === null) continue;
    const entries = Array.isArray(arg) ? chunk(arg) : Object.entries(arg);
    for (const [name, value] of entries) {
      if (typeof name === 'string' && name.toLowerCase() === SESSION_HEADER) return headerValue(value);
    }
  }
  return headerValue(res.getHeader(SESSION_HEADER));
}

function chunk(flat: readonly unknown[]): [unknown, unknown][] {
  const pairs: [unknown, unknown][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([flat[i], flat[i + 1]]);
  return pairs;
}

function headerValue(value: unknown): string | null {
  if (Array.isArray(value)) return headerValue(value[0]);
  return typeof value === 'string' || typeof value === 'number' ? String(value) : null;
}
