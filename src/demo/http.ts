import { randomUUID } from 'node:crypto';
import {
  type AuthInfo,
  createMcpHandler,
  isLegacyRequest,
  type McpServer,
  WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server';
import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify } from 'jose';
import { z } from 'zod';
import { type DemoIdentity, splitScopes } from './identity.js';
import { createNotesServer } from './notes.js';
import { createMemoryNotesBook, type NotesBook } from './notes-book.js';

const optionsSchema = z.object({
  /** Gatehouse's JWKS URL; the token's signing key must be in it. */
  jwksUrl: z.url({ protocol: /^https?$/ }),
  /** Required `iss`: the Gatehouse issuer, compared exactly. */
  issuer: z.string().min(1),
  /** Required `aud`: this server's URL as Gatehouse knows it. */
  audience: z.string().min(1),
  /** Leeway for `exp`/`nbf`/`iat`, in seconds. Default 5. */
  clockToleranceSeconds: z.number().int().min(0).max(300).default(5),
  /** Most concurrent 2025-era sessions; the oldest idle ones are evicted first. Default 100. */
  maxSessions: z.number().int().positive().default(100),
  /** A 2025-era session unused this long may be evicted, in milliseconds. Default 30 minutes. */
  sessionIdleMs: z
    .number()
    .int()
    .positive()
    .default(30 * 60_000),
  /** Give up on fetching the JWKS after this long, in milliseconds. Default 5000. */
  jwksTimeoutMs: z.number().int().positive().default(5000),
});

export type NotesHttpAppOptions = z.input<typeof optionsSchema> & {
  /** Where notes live; one book shared by every user of the process, keyed by verified `sub`. Default in memory. */
  notes?: NotesBook;
  /** Clock for session idleness, in epoch milliseconds. Default `Date.now`. */
  now?: () => number;
  /** Out-of-band errors (reporting only). */
  onError?: (error: Error) => void;
};

/** A web-standard MCP endpoint: `fetch` serves one HTTP request, `close` ends every open session. */
export interface NotesHttpApp {
  fetch(request: Request): Promise<Response>;
  close(): Promise<void>;
}

interface LegacySession {
  transport: WebStandardStreamableHTTPServerTransport;
  server: McpServer;
  /** The verified `sub` that opened the session; only that user may use it. */
  owner: string;
  lastUsedAt: number;
}

const REALM = 'gatehouse-demo';

/**
 * The demo notes server over Streamable HTTP, as an upstream Gatehouse calls with a bearer JWT it
 * minted. Every request must carry `Authorization: Bearer <jwt>` signed with a key from `jwksUrl`
 * (ES256 only), with exactly `issuer` and `audience`, an `exp` and a `sub`; otherwise the answer is
 * `401` with a `WWW-Authenticate: Bearer` challenge. The verified `sub`, `email` and `scope` are the
 * caller's identity, read afresh from every request's token.
 *
 * Both protocol eras are served on one URL. 2026-07-28 requests (per-request `_meta` envelope) go to
 * the SDK's stateless `createMcpHandler`; 2025-era traffic (`initialize` and what follows) gets real
 * sessions (`Mcp-Session-Id`), because server-to-client requests such as elicitation need somewhere
 * to send the client's answer. A session is bound to the `sub` that opened it: another user's token
 * with that session id gets the same `404` as an unknown id.
 *
 * @example
 * ```ts
 * import { serve } from '@hono/node-server';
 *
 * const app = createNotesHttpApp({
 *   jwksUrl: 'http://127.0.0.1:8787/.well-known/jwks.json',
 *   issuer: 'http://127.0.0.1:8787',
 *   audience: 'http://127.0.0.1:8788/mcp',
 * });
 * serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 8788 });
 * ```
 */
export function createNotesHttpApp(options: NotesHttpAppOptions): NotesHttpApp {
  const config = optionsSchema.parse(options);
  const notes = options.notes ?? createMemoryNotesBook();
  const now = options.now ?? Date.now;
  const onError = options.onError ?? (() => undefined);
  const jwks = createRemoteJWKSet(new URL(config.jwksUrl), { timeoutDuration: config.jwksTimeoutMs });
  const buildServer = () =>
    createNotesServer({ identity: (ctx) => identityFromAuthInfo(ctx.http?.authInfo), notes });

  const modern = createMcpHandler(buildServer, { legacy: 'reject', onerror: onError });
  const sessions = new Map<string, LegacySession>();

  async function authenticate(request: Request): Promise<AuthInfo | Response> {
    const header = request.headers.get('authorization');
    const match = header === null ? null : /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header);
    if (match?.[1] === undefined) {
      // RFC 6750 §3.1: a request without credentials gets a challenge without an error code.
      return challenge(
        header === null ? undefined : 'invalid_request',
        'expected Authorization: Bearer <jwt>',
      );
    }
    const token = match[1];
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        algorithms: ['ES256'],
        issuer: config.issuer,
        audience: config.audience,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: config.clockToleranceSeconds,
      }));
    } catch (error) {
      if (!(error instanceof errors.JOSEError) || error instanceof errors.JWKSTimeout) {
        onError(error instanceof Error ? error : new Error(String(error)));
        return unavailable();
      }
      return challenge('invalid_token', 'the access token is invalid');
    }
    const { sub, email, scope, sid } = payload;
    if (typeof sub !== 'string' || sub === '') return challenge('invalid_token', 'the token has no subject');
    return {
      token,
      clientId: stringClaim(payload.azp) ?? stringClaim(payload.client_id) ?? config.issuer,
      scopes: splitScopes(stringClaim(scope)),
      ...(payload.exp !== undefined && { expiresAt: payload.exp }),
      extra: { sub, email: stringClaim(email), issuer: config.issuer, sessionId: stringClaim(sid) },
    };
  }

  async function serveLegacy(request: Request, authInfo: AuthInfo): Promise<Response> {
    const owner = identityFromAuthInfo(authInfo)?.userId;
    const sessionId = request.headers.get('mcp-session-id');
    if (sessionId !== null) {
      const session = sessions.get(sessionId);
      if (session === undefined || owner === undefined || session.owner !== owner) return sessionNotFound();
      session.lastUsedAt = now();
      return session.transport.handleRequest(request, { authInfo });
    }
    if (owner === undefined) return sessionNotFound();
    if (!makeRoom()) return jsonRpcError(503, -32000, 'too many open sessions, try again later');
    const server = buildServer();
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, server, owner, lastUsedAt: now() });
      },
      onsessionclosed: (id) => {
        sessions.delete(id);
      },
    });
    server.server.onclose = () => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
    };
    await server.connect(transport);
    const response = await transport.handleRequest(request, { authInfo });
    // Anything but a successful `initialize` leaves the transport without a session: drop it.
    if (transport.sessionId === undefined) await server.close();
    return response;
  }

  /** Frees a slot by evicting idle sessions; false when every slot is held by an active session. */
  function makeRoom(): boolean {
    if (sessions.size < config.maxSessions) return true;
    const idleBefore = now() - config.sessionIdleMs;
    for (const [id, session] of [...sessions].sort(([, a], [, b]) => a.lastUsedAt - b.lastUsedAt)) {
      if (sessions.size < config.maxSessions || session.lastUsedAt > idleBefore) break;
      sessions.delete(id);
      void session.server.close().catch(onError);
    }
    return sessions.size < config.maxSessions;
  }

  return {
    async fetch(request) {
      const authInfo = await authenticate(request);
      if (authInfo instanceof Response) return authInfo;
      if (await isLegacyRequest(request)) return serveLegacy(request, authInfo);
      return modern.fetch(request, { authInfo });
    },
    async close() {
      const open = [...sessions.values()];
      sessions.clear();
      await Promise.allSettled([modern.close(), ...open.map((session) => session.server.close())]);
    },
  };
}

/** The caller as the verified token describes it; `undefined` when no verified `sub` is attached. */
export function identityFromAuthInfo(authInfo: AuthInfo | undefined): DemoIdentity | undefined {
  const extra = authInfo?.extra;
  const userId = stringClaim(extra?.sub);
  if (authInfo === undefined || userId === undefined) return undefined;
  const email = stringClaim(extra?.email);
  const issuer = stringClaim(extra?.issuer);
  const sessionId = stringClaim(extra?.sessionId);
  return {
    userId,
    scopes: [...authInfo.scopes],
    ...(email !== undefined && { email }),
    ...(issuer !== undefined && { issuer }),
    ...(sessionId !== undefined && { sessionId }),
  };
}

function stringClaim(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function challenge(error: 'invalid_request' | 'invalid_token' | undefined, description: string): Response {
  const params = [`realm="${REALM}"`];
  if (error !== undefined) params.push(`error="${error}"`, `error_description="${description}"`);
  return new Response(JSON.stringify({ error: error ?? 'unauthorized', error_description: description }), {
    status: 401,
    headers: {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'www-authenticate': `Bearer ${params.join(', ')}`,
    },
  });
}

function unavailable(): Response {
  return new Response(JSON.stringify({ error: 'temporarily_unavailable' }), {
    status: 503,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', 'retry-after': '5' },
  });
}

function sessionNotFound(): Response {
  return jsonRpcError(404, -32001, 'Session not found');
}

function jsonRpcError(status: number, code: number, message: string): Response {
  return new Response(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }), {
    status,
    headers: { 'content-type': 'application/json' },
  });
}
