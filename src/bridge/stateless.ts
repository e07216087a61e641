import { Client } from '@modelcontextprotocol/client';
import {
  type AuthInfo,
  createMcpHandler,
  type JSONRPCRequest,
  type McpHttpHandler,
  PROTOCOL_VERSION_META_KEY,
  ProtocolError,
  Server,
  type Transport,
} from '@modelcontextprotocol/server';
import { z } from 'zod';
import { type Principal, principalKey } from '../identity/principal.js';
import type { Clock } from '../ops/clock.js';
import type { EventBus } from '../ops/events.js';
import type { Logger } from '../ops/logger.js';
import { disabledTracing } from '../ops/tracing.js';
import { type UpstreamTimeouts, withDeadline } from './connection.js';
import type { CallAnswer, CallContext, InterceptorChain } from './interceptors.js';
import { type RequestTrace, traceRequest } from './request-trace.js';
import { credentialsExpired, type UpstreamConnector } from './upstream.js';
import {
  describeUpstreamFailure,
  upstreamError,
  upstreamFailureReason,
  upstreamRpcError,
} from './upstream-failure.js';

export interface StatelessBridgeOptions {
  readonly connector: UpstreamConnector;
  /** The interceptor chain every path to the upstream runs (diagnostics, tool-call events, …). */
  readonly chain: InterceptorChain;
  /** How long the upstream may take to start, and one relayed request to be answered. */
  readonly timeouts: UpstreamTimeouts;
  readonly events: EventBus;
  readonly clock: Clock;
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
  /** Retires the connections of users `isRevoked` names: each child stops once its requests finish. */
  closeRevoked(isRevoked: (principal: Principal) => boolean): void;
  close(): Promise<void>;
}

const anyResult = z.looseObject({});

/** Reserved `_meta` keys of the client's own envelope; the upstream client adds its own. */
const ENVELOPE_PREFIX = PROTOCOL_VERSION_META_KEY.slice(0, PROTOCOL_VERSION_META_KEY.lastIndexOf('/') + 1);

interface PooledClient {
  /** The verification the connection was opened with (its user is the pool key). */
  readonly principal: Principal;
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
  const { connector, logger, clock, events, chain } = options;
  const maxRequests = options.maxRequestsPerConnection ?? 1000;
  const maxAgeMs = options.maxConnectionAgeMs ?? 10 * 60_000;
  const pool = new Map<string, Promise<PooledClient>>();
  let opened = 0;
  const principals = new WeakMap<AuthInfo, { principal: Principal; cacheHit: boolean }>();

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
    try {
      await withDeadline(
        client.connect(transport),
        options.timeouts.startMs,
        'the upstream did not start in time',
      );
    } catch (error) {
      await client.close().catch(() => undefined);
      const reason = upstreamFailureReason(error, true, connector.kind);
      // Reported as an `upstream.failed` event; the cause (which the event never carries) is logged here.
      logger.debug({ err: error, user: principal.subject, reason }, describeUpstreamFailure(reason));
      events.emit({
        type: 'upstream.failed',
        upstream: connector.kind,
        reason,
        principal: principalKey(principal),
      });
      throw upstreamError(reason, error);
    }
    opened += 1;
    events.emit({ type: 'upstream.started', upstream: connector.kind, principal: principalKey(principal) });
    const pooled: PooledClient = {
      principal,
      client,
      transport,
      openedAt: clock.now(),
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
    logger.debug(
      {
        user: principal.subject,
        upstream: connector.kind,
        protocolVersion: client.getNegotiatedProtocolVersion(),
      },
      'per-user upstream connection opened',
    );
    return pooled;
  }

  /** The user's pooled connection, started when there is none; throws the upstream's failure. */
  function connected(principal: Principal): Promise<PooledClient> {
    const key = principalKey(principal);
    let entry = pool.get(key);
    if (entry === undefined) {
      entry = connect(principal);
      pool.set(key, entry);
      entry.catch(() => pool.delete(key));
    }
    return entry;
  }

  async function acquire(principal: Principal): Promise<PooledClient> {
    const pooled = await connected(principal);
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
    if (pooled.served >= maxRequests || clock.now() - pooled.openedAt >= maxAgeMs) retire(principal, pooled);
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
      const server = new Server(upstream.getServerVersion() ?? { name: 'upstream', version: '0.0.0' }, {
        capabilities: chain.capabilities(upstream.getServerCapabilities() ?? {}),
        ...(upstream.getInstructions() === undefined ? {} : { instructions: upstream.getInstructions() }),
      });
      const call: CallContext = {
        principal,
        cacheHit: auth.cacheHit,
        sessionId: undefined,
        transport: 'stateless',
      };
      server.fallbackRequestHandler = (request: JSONRPCRequest, requestCtx) => {
        const trace = traceRequest(connector.tracing ?? disabledTracing, request, call, connector.kind);
        return trace.run(async () => {
          let answer: CallAnswer;
          try {
            answer =
              (await chain.request(request, call)) ??
              chain.response(
                request,
                await forward(
                  upstream,
                  request,
                  trace,
                  requestCtx.mcpReq.signal,
                  options.timeouts.requestMs,
                  connector.kind,
                ),
                call,
              );
          } catch (error) {
            trace.end({ failure: error });
            throw error;
          }
          trace.end(answer);
          if ('error' in answer)
            throw new ProtocolError(answer.error.code, answer.error.message, answer.error.data);
          return answer.result as z.infer<typeof anyResult>;
        });
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
    async handle(request, parsedBody, principal, { cacheHit } = { cacheHit: false }) {
      // Started here, not in the SDK handler: a failure is the client's 502 with its reason, not a bare 500.
      await connected(principal);
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
    closeRevoked(isRevoked) {
      for (const entry of pool.values()) {
        void entry.then(
          (pooled) => {
            if (!isRevoked(pooled.principal)) return;
            retire(pooled.principal, pooled);
            if (pooled.inFlight === 0) {
              if (pooled.idleTimer !== undefined) clearTimeout(pooled.idleTimer);
              void pooled.client.close();
            }
          },
          () => undefined,
        );
      }
    },
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

/** The upstream's answer to one forwarded request, an error answer included. */
async function forward(
  upstream: Client,
  request: JSONRPCRequest,
  trace: RequestTrace,
  signal: AbortSignal,
  timeoutMs: number | undefined,
  kind: UpstreamConnector['kind'],
): Promise<CallAnswer> {
  try {
    trace.forward();
    const params = trace.params(withoutEnvelope(request.params));
    const result = await trace.sending(() =>
      upstream.request({ method: request.method, params }, anyResult, {
        signal,
        ...(timeoutMs !== undefined && { timeout: timeoutMs }),
      }),
    );
    return { result };
  } catch (error) {
    if (ProtocolError.isInstance(error)) {
      return {
        error: {
          code: error.code,
          message: error.message,
          ...(error.data !== undefined && { data: error.data }),
        },
      };
    }
    if (signal.aborted) throw error;
    return { error: upstreamRpcError(upstreamFailureReason(error, false, kind)) };
  }
}

function withoutEnvelope(params: JSONRPCRequest['params']): Record<string, unknown> | undefined {
  if (params === undefined) return undefined;
  const meta = params._meta;
  if (meta === undefined) return params;
  const kept = Object.fromEntries(Object.entries(meta).filter(([key]) => !key.startsWith(ENVELOPE_PREFIX)));
  const { _meta: _dropped, ...rest } = params;
  return Object.keys(kept).length === 0 ? rest : { ...rest, _meta: kept };
}
