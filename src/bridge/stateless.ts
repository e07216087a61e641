import { Client } from '@modelcontextprotocol/client';
import {
  type AuthInfo,
  CLIENT_CAPABILITIES_META_KEY,
  createMcpHandler,
  isJSONRPCNotification,
  isJSONRPCRequest,
  type JSONRPCMessage,
  type JSONRPCNotification,
  type JSONRPCRequest,
  type McpHttpHandler,
  McpServer,
  METHOD_NOT_FOUND,
  PROTOCOL_VERSION_META_KEY,
  ProtocolError,
  Server,
  type Transport,
} from '@modelcontextprotocol/server';
import { z } from 'zod';
import {
  type GatehouseError,
  isGatehouseError,
  type UpstreamFailureReason,
} from '../errors/gatehouse-error.js';
import { type Principal, principalKey } from '../identity/principal.js';
import { createSseStream } from '../net/sse-stream.js';
import type { Clock } from '../ops/clock.js';
import type { EventBus } from '../ops/events.js';
import type { Logger } from '../ops/logger.js';
import { disabledTracing } from '../ops/tracing.js';
import { toMessage, type UpstreamTimeouts, withDeadline } from './connection.js';
import type { CallAnswer, CallContext, InterceptorChain } from './interceptors.js';
import { type RequestTrace, traceRequest } from './request-trace.js';
import { createStatelessHttpRelay } from './stateless-http-relay.js';
import { credentialsExpired, type UpstreamConnector } from './upstream.js';
import {
  describeUpstreamFailure,
  UpstreamExitedError,
  upstreamError,
  upstreamFailureReason,
  upstreamRpcError,
} from './upstream-failure.js';
import { UpstreamRouter } from './upstream-router.js';

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

/** Largest JSON answer of an HTTP upstream the relay reads (SSE answers stream through unbuffered). */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

/** Reserved `_meta` keys of the client's own envelope; the upstream client adds its own. */
const ENVELOPE_PREFIX = PROTOCOL_VERSION_META_KEY.slice(0, PROTOCOL_VERSION_META_KEY.lastIndexOf('/') + 1);

/** The first revision whose requests carry their own envelope; an upstream speaking it gets them relayed as HTTP. */
const ENVELOPE_ERA = '2026-07-28';

/** What the SDK handler's factory learns of one request, through its `authInfo`. */
interface StatelessAuth {
  readonly principal: Principal;
  readonly cacheHit: boolean;
  /** The routed upstream's tool schemas (a tool call only). */
  readonly toolSchemas?: Map<string, Record<string, unknown>>;
  /** Set when the answer is "method not found": the HTTP binding's status for it is 404. */
  methodNotFound?: boolean;
}

/** Unread bytes a relayed `subscriptions/listen` stream may hold for a client that stopped reading. */
const MAX_UNREAD_LISTEN_BYTES = 1024 * 1024;

/** Pages of `tools/list` read for schemas; a server with more tools than this is checked on those listed. */
const MAX_TOOL_PAGES = 20;

interface PooledClient {
  /** The verification the connection was opened with (its user is the pool key). */
  readonly principal: Principal;
  /** The user's latest verification, which tokens minted for relayed requests carry. */
  readonly latest: { principal: Principal };
  /** Mints the user's credential for requests relayed as HTTP (an HTTP upstream only). */
  readonly relayToken: (() => Promise<string>) | undefined;
  /**
   * Relays requests as messages when the upstream speaks the envelope revision itself (a stdio child):
   * nothing is translated, so `input_required` rounds, progress and logging reach the client as sent.
   */
  readonly router: UpstreamRouter | undefined;
  /** The routed upstream's tool input schemas by name, for the SDK's `Mcp-Param-*` header checks. */
  toolSchemas: Promise<Map<string, Record<string, unknown>>> | undefined;
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
  const principals = new WeakMap<AuthInfo, StatelessAuth>();
  const httpRelay =
    connector.http === undefined
      ? undefined
      : createStatelessHttpRelay({
          target: connector.http,
          chain,
          tracing: connector.tracing ?? disabledTracing,
          requestMs: options.timeouts.requestMs,
          maxAnswerBytes: MAX_ANSWER_BYTES,
          logger,
        });

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
    const latest = { principal };
    const modern = (client.getNegotiatedProtocolVersion() ?? '') >= ENVELOPE_ERA;
    const router =
      modern && connector.http === undefined ? new UpstreamRouter(transport, transport.onmessage) : undefined;
    const pooled: PooledClient = {
      router,
      toolSchemas: undefined,
      principal,
      latest,
      relayToken: connector.http?.tokens({
        get principal() {
          return latest.principal;
        },
        sessionId: undefined,
      }),
      client,
      transport,
      openedAt: clock.now(),
      idleTimer: undefined,
      inFlight: 0,
      served: 0,
      retired: false,
    };
    client.onclose = () => {
      router?.failAll(new UpstreamExitedError('the upstream connection closed'));
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

  /**
   * The routed upstream's tool schemas, read once per connection and again when a call names a tool the
   * last read did not list (tools come and go); a failed read leaves the headers unchecked, never the call
   * refused, since the upstream still validates the arguments themselves.
   */
  async function toolSchemas(
    pooled: PooledClient,
    name: unknown,
  ): Promise<Map<string, Record<string, unknown>>> {
    const known = await (pooled.toolSchemas ?? Promise.resolve(undefined)).catch(() => undefined);
    if (known !== undefined && (typeof name !== 'string' || known.has(name))) return known;
    const router = pooled.router as UpstreamRouter;
    const reading = (async () => {
      const schemas = new Map<string, Record<string, unknown>>();
      let cursor: unknown;
      for (let page = 0; page < MAX_TOOL_PAGES; page++) {
        const answer = await router.request(
          {
            method: 'tools/list',
            params: {
              ...(typeof cursor === 'string' && { cursor }),
              _meta: { [PROTOCOL_VERSION_META_KEY]: ENVELOPE_ERA, [CLIENT_CAPABILITIES_META_KEY]: {} },
            },
            clientId: 'gatehouse-tool-schemas',
          },
          { notify: () => undefined, signal: AbortSignal.timeout(options.timeouts.startMs) },
        );
        if (!('result' in answer)) break;
        const tools = Array.isArray(answer.result.tools) ? answer.result.tools : [];
        for (const tool of tools as Array<{ name?: unknown; inputSchema?: unknown }>) {
          if (
            typeof tool.name === 'string' &&
            typeof tool.inputSchema === 'object' &&
            tool.inputSchema !== null
          ) {
            schemas.set(tool.name, tool.inputSchema as Record<string, unknown>);
          }
        }
        cursor = answer.result.nextCursor;
        if (typeof cursor !== 'string') break;
      }
      return schemas;
    })();
    pooled.toolSchemas = reading;
    return reading.catch(() => new Map());
  }

  /**
   * A `subscriptions/listen` stream relayed to the upstream's own: the SDK handler would answer it from its
   * per-request server, which has nothing to announce. Every notification the upstream tags with the
   * subscription reaches the client as an SSE event; the stream ends when either side ends it.
   */
  async function listen(
    started: PooledClient,
    message: JSONRPCRequest,
    request: Request,
    principal: Principal,
  ): Promise<Response> {
    const pooled = await acquire(principal);
    const router = started.router as UpstreamRouter;
    const aborter = new AbortController();
    let released = false;
    const releaseOnce = () => {
      if (released) return;
      released = true;
      release(principal, pooled);
    };
    const sse = createSseStream({
      maxQueuedBytes: MAX_UNREAD_LISTEN_BYTES,
      onCancel: () => {
        aborter.abort();
        releaseOnce();
      },
    });
    const write = (payload: JSONRPCMessage) => {
      // A listener this far behind is not reading: the subscription ends (it may listen again).
      if (!sse.isOver() && !sse.event('message', JSON.stringify(payload))) aborter.abort();
    };
    const finish = () => {
      sse.close();
      releaseOnce();
    };
    request.signal.addEventListener('abort', () => aborter.abort(), { once: true });
    router
      .request(
        { method: message.method, params: message.params, clientId: message.id },
        { notify: write, signal: aborter.signal },
      )
      .then(
        (answer) => write(toMessage(message.id, answer)),
        () => undefined,
      )
      .finally(finish);
    return new Response(sse.body, {
      status: 200,
      headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
    });
  }

  const handler: McpHttpHandler = createMcpHandler(
    async (ctx) => {
      const auth = ctx.authInfo === undefined ? undefined : principals.get(ctx.authInfo);
      if (auth === undefined) throw new Error('stateless request reached the bridge without a principal');
      const { principal } = auth;
      const pooled = await acquire(principal);
      const upstream = pooled.client;
      const info = upstream.getServerVersion() ?? { name: 'upstream', version: '0.0.0' };
      const serverOptions = {
        capabilities: chain.capabilities(upstream.getServerCapabilities() ?? {}),
        ...(upstream.getInstructions() === undefined ? {} : { instructions: upstream.getInstructions() }),
      };
      // A tool call to a routed upstream: the SDK checks `Mcp-Param-*` headers against the tool's schema,
      // as the upstream would over HTTP. It finds schemas on an `McpServer`, so one with none of its own
      // tools (no capabilities given to it: it registers no handlers) lends it the upstream's.
      const schemas = auth.toolSchemas;
      const product =
        schemas === undefined
          ? new Server(info, serverOptions)
          : Object.assign(new McpServer(info, { instructions: serverOptions.instructions }), {
              toolInputSchemaJson: (name: string) => schemas.get(name),
            });
      const server = product instanceof McpServer ? product.server : product;
      if (product instanceof McpServer) server.registerCapabilities(serverOptions.capabilities);
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
                pooled.router === undefined
                  ? await forward(
                      upstream,
                      request,
                      trace,
                      requestCtx.mcpReq.signal,
                      options.timeouts.requestMs,
                      connector.kind,
                    )
                  : await route(
                      pooled.router,
                      request,
                      requestCtx,
                      trace,
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
          if ('error' in answer) {
            // The revision's HTTP binding answers an unknown method with 404, whoever found it unknown.
            if (answer.error.code === METHOD_NOT_FOUND) auth.methodNotFound = true;
            throw new ProtocolError(answer.error.code, answer.error.message, answer.error.data);
          }
          return answer.result as z.infer<typeof anyResult>;
        });
      };
      server.onclose = () => release(principal, pooled);
      return product;
    },
    {
      legacy: 'reject',
      maxRequestBodySize: options.maxBodyBytes,
      onerror: (error) => logger.debug({ err: error }),
    },
  );

  return {
    async handle(request, parsedBody, principal, { cacheHit } = { cacheHit: false }) {
      // Started here, not in the SDK handler: a failure is the client's 502 with its reason, not a bare 500,
      // answering the request by its id like every other JSON-RPC error.
      let started: PooledClient;
      try {
        started = await connected(principal);
      } catch (error) {
        const reason = isGatehouseError(error) ? error.details?.reason : undefined;
        if (!isJSONRPCRequest(parsedBody) || typeof reason !== 'string') throw error;
        const failure = error as GatehouseError;
        const rpc = upstreamRpcError(reason as UpstreamFailureReason);
        const answer = toMessage(parsedBody.id, { error: { ...rpc, data: { code: failure.code, reason } } });
        return Response.json(answer, { status: failure.status });
      }
      if (
        httpRelay !== undefined &&
        (started.client.getNegotiatedProtocolVersion() ?? '') >= ENVELOPE_ERA &&
        (isJSONRPCRequest(parsedBody) || isJSONRPCNotification(parsedBody))
      ) {
        // The upstream speaks the client's revision: nothing to translate, so the exchange is relayed as HTTP.
        const pooled = await acquire(principal);
        pooled.latest.principal = principal;
        try {
          const call: CallContext = { principal, cacheHit, sessionId: undefined, transport: 'stateless' };
          return await httpRelay.relay(request, parsedBody, call, pooled.relayToken as () => Promise<string>);
        } finally {
          release(principal, pooled);
        }
      }
      const authInfo: AuthInfo = {
        // The handler gets the principal through this object; the client's token itself never goes further.
        token: '',
        clientId: principal.clientId ?? '',
        scopes: [...principal.scopes],
        expiresAt: principal.expiresAt,
      };
      const auth: StatelessAuth = {
        principal,
        cacheHit,
        ...(started.router !== undefined &&
          isJSONRPCRequest(parsedBody) &&
          parsedBody.method === 'tools/call' && {
            toolSchemas: await toolSchemas(started, parsedBody.params?.name),
          }),
      };
      principals.set(authInfo, auth);
      if (
        started.router !== undefined &&
        isJSONRPCRequest(parsedBody) &&
        parsedBody.method === 'subscriptions/listen'
      ) {
        return listen(started, parsedBody, request, principal);
      }
      const response = await handler.fetch(request, { authInfo, parsedBody });
      if (!auth.methodNotFound || !response.headers.get('content-type')?.startsWith('application/json')) {
        return response;
      }
      return new Response(response.body, { status: 404, headers: response.headers });
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
      httpRelay?.close();
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

/** The upstream's answer to one request relayed as a message, its notifications streamed to the client. */
async function route(
  router: UpstreamRouter,
  request: JSONRPCRequest,
  ctx: {
    mcpReq: {
      envelope?: unknown;
      inputResponses?: Record<string, unknown> | undefined;
      requestState: () => unknown;
      signal: AbortSignal;
      notify: (n: JSONRPCNotification) => Promise<void>;
    };
  },
  trace: RequestTrace,
  timeoutMs: number | undefined,
  kind: UpstreamConnector['kind'],
): Promise<CallAnswer> {
  try {
    trace.forward();
    // The SDK handler lifted the envelope out of `_meta`, and a retry's `inputResponses` and
    // `requestState` out of `params`; the upstream needs them back, as the client sent them.
    const { envelope, inputResponses } = ctx.mcpReq;
    const requestState = ctx.mcpReq.requestState();
    const params = trace.params({
      ...request.params,
      ...(inputResponses !== undefined && { inputResponses }),
      ...(typeof requestState === 'string' && { requestState }),
      _meta: { ...request.params?._meta, ...(envelope as Record<string, unknown> | undefined) },
    });
    return await trace.sending(() =>
      router.request(
        { method: request.method, params, clientId: request.id },
        {
          notify: (notification) => void ctx.mcpReq.notify(notification).catch(() => undefined),
          signal: ctx.mcpReq.signal,
          timeoutMs,
        },
      ),
    );
  } catch (error) {
    if (ctx.mcpReq.signal.aborted) throw error;
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
