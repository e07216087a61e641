import { Client } from '@modelcontextprotocol/client';
import {
  type AuthInfo,
  createMcpHandler,
  type JSONRPCRequest,
  type McpHttpHandler,
  PROTOCOL_VERSION_META_KEY,
  Server,
  type Transport,
} from '@modelcontextprotocol/server';
import { z } from 'zod';
import type { Diagnostics } from '../diagnostics/tools.js';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { type Principal, principalKey } from '../identity/principal.js';
import type { Logger } from '../ops/logger.js';
import { credentialsExpired, type UpstreamConnector } from './upstream.js';

export interface StatelessBridgeOptions {
  readonly connector: UpstreamConnector;
  readonly logger: Logger;
  /** A user's upstream connection is closed after this much idleness. */
  readonly idleMs: number;
  /** Largest accepted request body, in bytes. */
  readonly maxBodyBytes: number;
  /**
   * A user's connection is retired (new requests get a fresh one; the old one closes once idle) after
   * serving this many requests. It bounds whatever a long-lived client accumulates per request; on Node 20
   * each HTTP request combines its abort signal with the transport's (`AbortSignal.any`), and Node leaks
   * a small record on the long-lived signal every time (nodejs/node#55351). Default 1000.
   */
  readonly maxRequestsPerConnection?: number;
  /** A user's connection is retired this long after it opened, however busy. Default 10 min. */
  readonly maxConnectionAgeMs?: number;
  /** The `gatehouse_*` tools, when diagnostics are enabled: listed with the upstream's and answered here. */
  readonly diagnostics?: Diagnostics | undefined;
}

/** Serves 2026-07-28 (per-request envelope) traffic: one upstream connection per user, never shared. */
export interface StatelessBridge {
  handle(
    request: Request,
    parsedBody: unknown,
    principal: Principal,
    auth?: { readonly cacheHit: boolean },
  ): Promise<Response>;
  /** Users with an open upstream connection (diagnostics and tests). */
  connectedUsers(): number;
  /** Upstream connections opened since start (diagnostics and tests). */
  connectionsOpened(): number;
  close(): Promise<void>;
}

const anyResult = z.looseObject({});

/** Reserved `_meta` keys of the client's own envelope; the upstream client adds its own. */
const ENVELOPE_PREFIX = PROTOCOL_VERSION_META_KEY.slice(0, PROTOCOL_VERSION_META_KEY.lastIndexOf('/') + 1);

interface PooledClient {
  readonly client: Client;
  readonly transport: Transport;
  readonly openedAt: number;
  idleTimer: NodeJS.Timeout | undefined;
  inFlight: number;
  served: number;
  /** No longer handed out; closed when its last request finishes. */
  retired: boolean;
}

export function createStatelessBridge(options: StatelessBridgeOptions): StatelessBridge {
  const { connector, logger } = options;
  const maxRequests = options.maxRequestsPerConnection ?? 1000;
  const maxAgeMs = options.maxConnectionAgeMs ?? 10 * 60_000;
  const pool = new Map<string, Promise<PooledClient>>();
  let opened = 0;
  const principals = new WeakMap<AuthInfo, { principal: Principal; cacheHit: boolean }>();
  const { diagnostics } = options;

  /**
   * Takes a connection out of the pool. Invariant: a connection that is not retired is the pool's entry
   * for its user, so only the first retirement removes the entry, never a newer connection's.
   */
  function retire(principal: Principal, pooled: PooledClient): void {
    if (pooled.retired) return;
    pooled.retired = true;
    pool.delete(principalKey(principal));
  }

  async function connect(principal: Principal): Promise<PooledClient> {
    const client = new Client(
      { name: 'gatehouse', version: '0.1.0' },
      {
        capabilities: {},
        versionNegotiation: { mode: 'auto' },
        // Input-required rounds belong to the end client, not to the gateway.
        inputRequired: { autoFulfill: false },
      },
    );
    const transport = connector.open({ principal, sessionId: undefined });
    await client.connect(transport);
    opened += 1;
    const pooled: PooledClient = {
      client,
      transport,
      openedAt: Date.now(),
      idleTimer: undefined,
      inFlight: 0,
      served: 0,
      retired: false,
    };
    client.onclose = () => {
      retire(principal, pooled);
      if (pooled.idleTimer !== undefined) clearTimeout(pooled.idleTimer);
      logger.debug({ user: principal.subject }, 'per-user upstream connection closed');
    };
    logger.info(
      {
        user: principal.subject,
        upstream: connector.kind,
        protocolVersion: client.getNegotiatedProtocolVersion(),
      },
      'per-user upstream connection opened',
    );
    return pooled;
  }

  async function acquire(principal: Principal): Promise<PooledClient> {
    const key = principalKey(principal);
    let entry = pool.get(key);
    if (entry === undefined) {
      entry = connect(principal);
      pool.set(key, entry);
      entry.catch(() => pool.delete(key));
    }
    let pooled: PooledClient;
    try {
      pooled = await entry;
    } catch (error) {
      throw new GatehouseError('ERR_UPSTREAM_UNAVAILABLE', 'the upstream MCP server could not be started', {
        cause: error,
      });
    }
    if (credentialsExpired(pooled.transport)) {
      // Brokered credentials are never used past their expiry: a fresh connection (fresh child, fresh
      // credentials) serves this request; the old one closes once its requests in flight finish.
      retire(principal, pooled);
      if (pooled.inFlight === 0) {
        if (pooled.idleTimer !== undefined) clearTimeout(pooled.idleTimer);
        void pooled.client.close();
      }
      return acquire(principal);
    }
    if (pooled.idleTimer !== undefined) clearTimeout(pooled.idleTimer);
    pooled.idleTimer = undefined;
    pooled.inFlight += 1;
    pooled.served += 1;
    if (pooled.served >= maxRequests || Date.now() - pooled.openedAt >= maxAgeMs) retire(principal, pooled);
    return pooled;
  }

  function release(principal: Principal, pooled: PooledClient): void {
    pooled.inFlight -= 1;
    if (pooled.inFlight > 0) return;
    if (pooled.retired) {
      void pooled.client.close();
      return;
    }
    pooled.idleTimer = setTimeout(() => {
      retire(principal, pooled);
      void pooled.client.close();
    }, options.idleMs);
    pooled.idleTimer.unref();
  }

  const handler: McpHttpHandler = createMcpHandler(
    async (ctx) => {
      const auth = ctx.authInfo === undefined ? undefined : principals.get(ctx.authInfo);
      if (auth === undefined) throw new Error('stateless request reached the bridge without a principal');
      const { principal } = auth;
      const pooled = await acquire(principal);
      const upstream = pooled.client;
      const upstreamCapabilities = upstream.getServerCapabilities() ?? {};
      const server = new Server(upstream.getServerVersion() ?? { name: 'upstream', version: '0.0.0' }, {
        capabilities:
          diagnostics === undefined
            ? upstreamCapabilities
            : { ...upstreamCapabilities, tools: upstreamCapabilities.tools ?? {} },
        ...(upstream.getInstructions() === undefined ? {} : { instructions: upstream.getInstructions() }),
      });
      server.fallbackRequestHandler = async (request: JSONRPCRequest, requestCtx) => {
        if (
          diagnostics !== undefined &&
          request.method === 'tools/call' &&
          diagnostics.handles(request.params?.name)
        ) {
          // Answered here, never forwarded: the upstream does not know these tools.
          return diagnostics.call(request.params?.name as string, request.params?.arguments, {
            principal,
            cacheHit: auth.cacheHit,
            sessionId: undefined,
          });
        }
        if (
          diagnostics !== undefined &&
          request.method === 'tools/list' &&
          upstreamCapabilities.tools === undefined
        ) {
          // An upstream without tools would not know the method; the diagnostics tools are the whole list.
          return { tools: [...diagnostics.tools] };
        }
        const result = await upstream.request(
          { method: request.method, params: withoutEnvelope(request.params) },
          anyResult,
          { signal: requestCtx.mcpReq.signal },
        );
        return diagnostics !== undefined && request.method === 'tools/list'
          ? (diagnostics.appendTools(result) as typeof result)
          : result;
      };
      server.onclose = () => release(principal, pooled);
      return server;
    },
    {
      legacy: 'reject',
      maxRequestBodySize: options.maxBodyBytes,
      onerror: (error) => logger.debug({ err: error }),
    },
  );

  return {
    handle(request, parsedBody, principal, { cacheHit } = { cacheHit: false }) {
      const authInfo: AuthInfo = {
        // The handler gets the principal through this object; the client's token itself never goes further.
        token: '',
        clientId: principal.clientId ?? '',
        scopes: [...principal.scopes],
        expiresAt: principal.expiresAt,
      };
      principals.set(authInfo, { principal, cacheHit });
      return handler.fetch(request, { authInfo, parsedBody });
    },
    connectedUsers: () => pool.size,
    connectionsOpened: () => opened,
    async close() {
      await handler.close();
      const entries = [...pool.values()];
      pool.clear();
      for (const entry of entries) {
        const pooled = await entry.catch(() => undefined);
        if (pooled?.idleTimer !== undefined) clearTimeout(pooled.idleTimer);
        await pooled?.client.close().catch(() => undefined);
      }
    },
  };
}

function withoutEnvelope(params: JSONRPCRequest['params']): Record<string, unknown> | undefined {
  if (params === undefined) return undefined;
  const meta = params._meta;
  if (meta === undefined) return params;
  const kept = Object.fromEntries(Object.entries(meta).filter(([key]) => !key.startsWith(ENVELOPE_PREFIX)));
  const { _meta: _dropped, ...rest } = params;
  return Object.keys(kept).length === 0 ? rest : { ...rest, _meta: kept };
}
