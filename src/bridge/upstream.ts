import {
  StreamableHTTPClientTransport,
  type StreamableHTTPClientTransportOptions,
} from '@modelcontextprotocol/client';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import type { JSONRPCMessage, Transport, TransportSendOptions } from '@modelcontextprotocol/server';
import type { HttpUpstreamConfig, StdioUpstreamConfig, UpstreamConfig } from '../config/schema.js';
import type { BrokeredCredentials, CredentialCache } from '../downstream/credential-broker.js';
import { createAudienceTokenMinter } from '../downstream/minted-token.js';
import type { Principal } from '../identity/principal.js';
import type { Clock } from '../ops/clock.js';
import type { Logger } from '../ops/logger.js';
import { disabledTracing, type Tracing, withTraceHeaders } from '../ops/tracing.js';
import type { TokenSigner } from '../tokens/sign.js';

/**
 * Who an upstream connection acts for. A connection is never shared by two principals; `principal` may be
 * replaced by a fresher verification of the same user (a renewed token), never by another user.
 */
export interface UpstreamIdentity {
  readonly principal: Principal;
  /** The Gatehouse session, or `undefined` for the per-user connection that serves stateless requests. */
  readonly sessionId: string | undefined;
}

/**
 * Signs the short-lived identity token an HTTP upstream receives instead of the client's own token
 * (Gatehouse's `TokenSigner`; the HTTP connector mints through `createAudienceTokenMinter`, so the token's
 * `typ` is `JWT`, never `at+jwt`).
 */
export type IdentityTokenSigner = TokenSigner;

/**
 * What an HTTP upstream's transport does with its SSE streams, for a relay that mirrors it to its client.
 * When the upstream ends a stream before its answer (SEP-1699 polling), the transport resumes it with a
 * GET carrying the stream's last event id, after the delay the upstream asked for.
 */
export interface UpstreamStreamObserver {
  /** The transport resumes the stream whose last event was `lastEventId`, having waited `retryMs`. */
  resuming(lastEventId: string, retryMs: number | undefined): void;
}

/** Opens client transports to the configured upstream, one per session (or per user, for stateless requests). */
export interface UpstreamConnector {
  readonly kind: UpstreamConfig['kind'];
  /** A new, not yet started transport carrying `identity`; `streams` hears of resumed SSE streams (HTTP). */
  open(identity: UpstreamIdentity, streams?: UpstreamStreamObserver): Transport;
  /** A non-secret description for logs and diagnostics. */
  describe(): string;
  /** Traces requests to the upstream (see `request-trace.ts`); absent: off. */
  readonly tracing?: Tracing | undefined;
  /** For an HTTP upstream: where and how to reach it directly (the stateless relay forwards exchanges). */
  readonly http?: HttpUpstreamTarget | undefined;
}

/** An HTTP upstream as the stateless relay sees it: its URL, fixed headers and per-user credentials. */
export interface HttpUpstreamTarget {
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  /** A token source for `identity`: a minted, audience-bound token, reused until shortly before it expires. */
  tokens(identity: UpstreamIdentity): () => Promise<string>;
}

export function createUpstreamConnector(deps: {
  upstream: UpstreamConfig;
  signer: IdentityTokenSigner;
  clock: Clock;
  logger: Logger;
  /**
   * The credential broker's cache. With it, a stdio child starts only once the user's brokered
   * credentials are known, with their `env` in its environment (see {@link credentialsExpired}).
   */
  credentials?: CredentialCache;
  /** With tracing on, requests carry the trace context (`_meta.traceparent`; HTTP headers too). */
  tracing?: Tracing;
}): UpstreamConnector {
  const { upstream } = deps;
  const tracing = deps.tracing ?? disabledTracing;
  if (upstream.kind === 'http') return httpConnector(upstream, deps.signer, deps.clock, tracing);
  const stdio = { ...stdioConnector(upstream, deps.logger), tracing };
  const { credentials } = deps;
  // `stdio.open`'s second parameter is extra environment, never a stream observer (a child has no SSE).
  if (credentials === undefined) return { ...stdio, open: (identity) => stdio.open(identity) };
  return {
    ...stdio,
    open: (identity) =>
      new BrokeredTransport(credentials, identity, (env) => stdio.open(identity, env), deps.logger),
  };
}

/**
 * True when `transport` was started with brokered credentials that have expired since. The owner of the
 * transport replaces it (a fresh child, with fresh credentials) before using it again: the session relay
 * on the session's next request, the stateless bridge by retiring the user's pooled connection.
 */
export function credentialsExpired(transport: Transport): boolean {
  return transport instanceof BrokeredTransport && transport.expired();
}

/**
 * When the brokered credentials `transport` was started with expire (epoch milliseconds), or `undefined`
 * (none, not started yet, or never expiring). Relays that keep one upstream for a connection's whole life
 * (WebSocket, legacy SSE) end the connection then.
 */
export function credentialsExpireAt(transport: Transport): number | undefined {
  return transport instanceof BrokeredTransport ? transport.expiresAt() : undefined;
}

/**
 * A stdio transport whose child is spawned only at `start()`, once the broker's credentials for this
 * identity are known; their `env` is added to the child's environment. A broker failure fails `start()`,
 * so the child never runs without the user's credentials (and never with the gateway's own).
 */
class BrokeredTransport implements Transport {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: ((message: JSONRPCMessage) => void) | undefined;
  private inner: Transport | undefined;
  private credentials: BrokeredCredentials | undefined;
  private closed = false;

  constructor(
    private readonly cache: CredentialCache,
    private readonly identity: UpstreamIdentity,
    private readonly spawn: (env: Readonly<Record<string, string>>) => Transport,
    private readonly logger: Logger,
  ) {}

  expiresAt(): number | undefined {
    return this.credentials?.expiresAt;
  }

  expired(): boolean {
    return this.credentials !== undefined && this.cache.isExpired(this.credentials);
  }

  async start(): Promise<void> {
    const { principal, sessionId } = this.identity;
    const credentials = await this.cache.getCredentials(principal, sessionId);
    // Closed while the broker answered: spawning now would leak a child nobody owns.
    if (this.closed) throw new Error('upstream transport closed before it started');
    this.credentials = credentials;
    const inner = this.spawn(credentials.env ?? {});
    inner.onmessage = (message) => this.onmessage?.(message);
    inner.onerror = (error) => this.onerror?.(error);
    inner.onclose = () => {
      // The per-user stateless connection owns its user-level entry; a session's is dropped when it ends.
      if (sessionId === undefined) this.cache.dropUser(principal);
      this.onclose?.();
    };
    this.inner = inner;
    this.logger.debug(
      { sessionId, user: principal.subject, credentialEnv: Object.keys(credentials.env ?? {}) },
      'upstream started with brokered credentials',
    );
    await inner.start();
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (this.inner === undefined) throw new Error('upstream transport not started');
    await this.inner.send(message, options);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.inner === undefined) this.onclose?.();
    else await this.inner.close();
  }
}

interface StdioConnector extends Omit<UpstreamConnector, 'open'> {
  open(identity: UpstreamIdentity, extraEnv?: Readonly<Record<string, string>>): Transport;
}

function stdioConnector(config: StdioUpstreamConfig, logger: Logger): StdioConnector {
  return {
    kind: 'stdio',
    describe: () => `stdio: ${[config.command, ...config.args].join(' ')}`,
    open({ principal, sessionId }, extraEnv: Readonly<Record<string, string>> = {}) {
      const names = config.identityEnv;
      const env: Record<string, string> = {
        ...getDefaultEnvironment(),
        ...config.env,
        // Brokered credentials never override the identity variables below.
        ...extraEnv,
        [names.userId]: principal.subject,
        [names.email]: principal.email ?? '',
        [names.scopes]: principal.scopes.join(' '),
        [names.issuer]: principal.issuer,
        [names.sessionId]: sessionId ?? '',
      };
      const transport = new StdioClientTransport({
        command: config.command,
        args: config.args,
        env,
        stderr: 'pipe',
        ...(config.cwd === undefined ? {} : { cwd: config.cwd }),
      });
      // The child's stderr is its log; keep it, attributed, at debug level (it is the upstream's output,
      // not ours, so it is never parsed for meaning).
      transport.stderr?.on('data', (chunk: Buffer) => {
        logger.debug(
          { sessionId, user: principal.subject, upstream: 'stdio' },
          chunk.toString('utf8').trimEnd(),
        );
      });
      return transport;
    },
  };
}

/** Minted tokens are reused until this close to expiry, so a burst of calls costs one signature. */
const REMINT_MARGIN_SECONDS = 10;

function httpConnector(
  config: HttpUpstreamConfig,
  signer: IdentityTokenSigner,
  clock: Clock,
  tracing: Tracing,
): UpstreamConnector {
  const audience = config.audience ?? config.url;
  const minter = createAudienceTokenMinter({ signer, clock });
  // Each request carries the trace context active when it is sent (the upstream request's span).
  const tracedFetch = tracing.enabled
    ? (url: string | URL, init?: RequestInit) =>
        fetch(url, { ...init, headers: withTraceHeaders(tracing, init?.headers) })
    : undefined;
  function tokens(identity: UpstreamIdentity): () => Promise<string> {
    const { sessionId } = identity;
    let cached: { token: string; expiresAt: number } | undefined;
    return async () => {
      const now = Math.floor(clock.now() / 1000);
      // Read at call time: a session's principal is refreshed when the client presents a renewed token.
      const { principal } = identity;
      if (cached !== undefined && cached.expiresAt - REMINT_MARGIN_SECONDS > now) return cached.token;
      // Never the client's token: a fresh identity, audience-bound to this upstream (no token passthrough).
      // The minter caps the lifetime at the principal's own expiry (and refuses an expired principal).
      const minted = await minter.mint(principal, {
        audience,
        ttlSeconds: config.tokenTtlSeconds,
        ...(sessionId === undefined ? {} : { sessionId }),
      });
      cached = { token: minted.token, expiresAt: minted.expiresAt };
      return minted.token;
    };
  }
  return {
    kind: 'http',
    tracing,
    describe: () => `http: ${config.url}`,
    http: { url: new URL(config.url), headers: config.headers, tokens },
    open(identity, streams) {
      return new StreamableHTTPClientTransport(new URL(config.url), {
        authProvider: { token: tokens(identity) },
        requestInit: { headers: config.headers },
        ...(tracedFetch !== undefined && { fetch: tracedFetch }),
        ...(streams !== undefined && observeResumes(streams, tracedFetch ?? fetch)),
      });
    },
  };
}

/**
 * Transport options that tell `streams` when the transport resumes a stream: its resuming GET (carrying
 * `Last-Event-ID`) is the one sign that a stream ended before its answer, and the delay it waited is the
 * upstream's `retry` (or the transport's own backoff). Scheduling itself is the transport's default.
 */
function observeResumes(
  streams: UpstreamStreamObserver,
  base: (url: string | URL, init?: RequestInit) => Promise<Response>,
): Pick<StreamableHTTPClientTransportOptions, 'fetch' | 'reconnectionScheduler'> {
  let waitedMs: number | undefined;
  return {
    fetch: (url, init) => {
      const lastEventId = init?.method === 'GET' ? new Headers(init.headers).get('last-event-id') : null;
      if (lastEventId !== null) streams.resuming(lastEventId, waitedMs);
      return base(url, init);
    },
    reconnectionScheduler: (reconnect, delay) => {
      const timer = setTimeout(() => {
        waitedMs = delay;
        reconnect();
      }, delay);
      return () => clearTimeout(timer);
    },
  };
}

/**
 * Closes an upstream connection for good. An HTTP upstream's MCP session is deleted first (a DELETE with
 * its session id), so the upstream frees it now rather than at its own idle timeout; failures are logged
 * at debug level only, since the connection is being discarded either way.
 */
export async function closeUpstream(transport: Transport, logger: Logger): Promise<void> {
  try {
    const http = transport as Transport & { terminateSession?: () => Promise<void> };
    if (typeof http.terminateSession === 'function') await http.terminateSession().catch(() => undefined);
    await transport.close();
  } catch (error) {
    logger.debug({ err: error }, 'closing upstream failed');
  }
}
