import type { JSONRPCMessage } from '@modelcontextprotocol/server';
import { isGatehouseError } from '../errors/gatehouse-error.js';
import type { Principal } from '../identity/principal.js';
import { type Clock, runAt } from '../ops/clock.js';
import type { EventBus, SessionEndReason } from '../ops/events.js';
import type { Logger } from '../ops/logger.js';
import type { SessionManager } from '../sessions/manager.js';
import type { SessionRecord } from '../stores/ports.js';
import { UpstreamConnection, type UpstreamTimeouts } from './connection.js';
import type { InterceptorChain } from './interceptors.js';
import type { LiveEntry, LiveRegistry } from './registry.js';
import type { UpstreamConnector } from './upstream.js';

/** Why a live session ended without its owner asking. */
export type LiveEndCause =
  /** The session ended in the store: swept, evicted, revoked, deleted elsewhere. */
  | { readonly kind: 'session_ended'; readonly reason: SessionEndReason }
  /** The upstream went away (a crash). */
  | { readonly kind: 'upstream_exited' }
  /** The brokered credentials the upstream runs with expired: it is never used past them. */
  | { readonly kind: 'credentials_expired' };

export interface LiveSessionOptions {
  readonly sessions: SessionManager;
  readonly registry: LiveRegistry;
  readonly kind: 'websocket' | 'legacy-sse';
  readonly connector: UpstreamConnector;
  readonly chain: InterceptorChain;

  /** How long the upstream may take to start, and one relayed request to be answered. */

  readonly timeouts: UpstreamTimeouts;
  /** A connected session records activity at most this often, in milliseconds. */
  readonly touchIntervalMs: number;
  readonly events: EventBus;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Hands an upstream message to the client. */
  readonly deliver: (message: JSONRPCMessage) => void;
  /** Called once when the session ends by itself; the owner closes its socket or stream. */
  readonly onEnd: (cause: LiveEndCause) => void;
}

/**
 * A connection-shaped session (a WebSocket, a legacy SSE stream): one Gatehouse session bound to its
 * user, one upstream of its own for its whole life, activity recorded while it is connected, ended when
 * the upstream's credentials expire, and released exactly once — the session ended and the upstream
 * stopped together, whoever ends first.
 */
export class LiveSession implements LiveEntry {
  private connection: UpstreamConnection | undefined;
  private lastTouchAt: number;
  private cancelExpiry: (() => void) | undefined;
  private released: Promise<void> | undefined;
  private over = false;
  /** Why the session ends, when it ended by itself (the owner's `release` then records this reason). */
  private endReason: SessionEndReason | undefined;

  private constructor(
    private readonly options: LiveSessionOptions,
    readonly record: SessionRecord,
    private current: Principal,
  ) {
    this.lastTouchAt = options.clock.now();
  }

  /** Opens the session (throws `ERR_SESSION_LIMIT` at the user's cap); the upstream starts in `connect`. */
  static async open(
    principal: Principal,
    data: Record<string, unknown>,
    options: LiveSessionOptions,
  ): Promise<LiveSession> {
    const record = await options.sessions.open(principal, options.kind, data);
    const live = new LiveSession(options, record, principal);
    options.registry.add(live);
    return live;
  }

  get sessionId(): string {
    return this.record.id;
  }

  get principal(): Principal {
    return this.current;
  }

  /** Adopts a newer verification of the same user (the caller checked issuer and subject). */
  set principal(principal: Principal) {
    this.current = principal;
  }

  get isOver(): boolean {
    return this.over;
  }

  /** Starts the upstream; throws the upstream's failure (the caller releases the session). */
  async connect(): Promise<void> {
    const live = this;
    const { options } = this;
    this.connection = await UpstreamConnection.open({
      connector: options.connector,
      identity: {
        // Read at use: HTTP upstreams mint from the freshest verification of the same user.
        get principal() {
          return live.current;
        },
        sessionId: this.record.id,
      },
      chain: options.chain,
      transport: options.kind,
      timeouts: options.timeouts,
      events: options.events,
      logger: options.logger,
      deliver: (message) => {
        if (!this.over) options.deliver(message);
      },
      onExit: () => this.end({ kind: 'upstream_exited' }),
    });
    if (this.over) {
      await this.connection.close();
      return;
    }
    const expiresAt = this.connection.credentialsExpireAt();
    if (expiresAt !== undefined) {
      this.cancelExpiry = runAt(expiresAt, options.clock, () => this.end({ kind: 'credentials_expired' }));
    }
  }

  /** A message from the client, for the upstream; `false` if the credentials expired first. */
  async send(message: JSONRPCMessage, cacheHit: boolean): Promise<boolean> {
    const connection = this.connection;
    if (this.over || connection === undefined) return true;
    if (connection.credentialsExpired()) {
      this.end({ kind: 'credentials_expired' });
      return false;
    }
    this.touch();
    await connection.fromClient(message, { principal: this.current, cacheHit });
    return true;
  }

  /** Answers the requests still waiting upstream with `message` (before the stream closes). */
  failWaiting(message: string): void {
    this.connection?.failPending('upstream_exited', message);
  }

  /**
   * Records activity on the session, at most every `touchIntervalMs`: a connected stream or socket is an
   * active session even when only the upstream talks. A session gone from the store ends this one.
   */
  touch(): void {
    const now = this.options.clock.now();
    if (this.over || now - this.lastTouchAt < this.options.touchIntervalMs) return;
    this.lastTouchAt = now;
    this.options.sessions
      .resume(this.record.id, this.current, { establish: true })
      .catch((error: unknown) => {
        if (isGatehouseError(error, 'ERR_SESSION_NOT_FOUND')) {
          this.end({ kind: 'session_ended', reason: 'expired' });
        } else {
          this.options.logger.warn(
            { err: error, sessionId: this.record.id },
            'could not record session activity',
          );
        }
      });
  }

  sessionEnded(reason: SessionEndReason): void {
    this.end({ kind: 'session_ended', reason });
  }

  /**
   * Stops the upstream and ends the session, once (also when the owner closes first). Ending the session
   * does not wait for the upstream to exit: the user's slot is free at once.
   */
  release(requested: SessionEndReason = 'deleted'): Promise<void> {
    if (this.released !== undefined) return this.released;
    const reason = this.endReason ?? requested;
    this.over = true;
    this.cancelExpiry?.();
    this.options.registry.remove(this);
    const connection = this.connection;
    this.released = Promise.all([
      this.options.sessions.end(this.record.id, this.current, reason).catch((error: unknown) => {
        // Already ended (that may be why we are here); anything else is worth knowing.
        if (!isGatehouseError(error, 'ERR_SESSION_NOT_FOUND')) {
          this.options.logger.warn({ err: error, sessionId: this.record.id }, 'could not end the session');
        }
      }),
      connection?.close(),
    ]).then(() => undefined);
    return this.released;
  }

  private end(cause: LiveEndCause): void {
    if (this.over || this.endReason !== undefined) return;
    this.endReason =
      cause.kind === 'session_ended'
        ? cause.reason
        : cause.kind === 'upstream_exited'
          ? 'upstream_failed'
          : 'expired';
    this.options.onEnd(cause);
    void this.release();
  }
}
