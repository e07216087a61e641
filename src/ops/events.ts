import type { Logger } from './logger.js';

/**
 * What the authorization server records (sign-in, consent, codes, tokens). Never carries a token, code,
 * secret or password.
 */
export interface AuthEvent {
  readonly type:
    | 'login'
    | 'login.federated'
    | 'consent'
    | 'oauth.authorize'
    | 'oauth.authorize.code_issued'
    | 'oauth.token.authorization_code'
    | 'oauth.token.issued'
    | 'oauth.token.refresh'
    | 'oauth.token.refresh_retried'
    | 'oauth.token.refresh_reuse'
    | 'oauth.token.code_replayed'
    | 'oauth.token.exchange'
    | 'oauth.revoke.refresh_token'
    | 'oauth.revoke.access_token'
    | 'oauth.register';
  readonly outcome: 'success' | 'failure';
  /** The RFC error or stable code on failure. */
  readonly error?: string;
  /** The sub-code naming the failed check (`pkce_mismatch`, `code_replayed`, …). */
  readonly reason?: string;
  readonly clientId?: string;
  /** `idp#subject` of the user concerned, when known. */
  readonly principal?: string;
  readonly grantId?: string;
  /** The client's address (as `server.trustedProxies` resolved it). */
  readonly ip?: string;
  readonly detail?: Readonly<Record<string, string | number | boolean>>;
}

/** Why a session ended. */
export type SessionEndReason =
  /** The client sent DELETE (or closed its stream or socket). */
  | 'deleted'
  /** Idle timeout or absolute lifetime. */
  | 'expired'
  /** The user opened one session too many; this was their least recently used. */
  | 'evicted'
  /** The user's access was revoked (account removed, disabled, password changed, grant revoked). */
  | 'revoked'
  /** Its upstream could not be started or reached. */
  | 'upstream_failed'
  /** The gateway is shutting down. */
  | 'shutdown'
  /** An operator ended it (`gatehouse sessions end`, the admin API or console). */
  | 'ended_by_operator';

/** Everything Gatehouse reports: audit, metrics and tracing subscribe; nothing else logs these. */
export type GatehouseEvent =
  | AuthEvent
  | {
      readonly type: 'session.opened';
      readonly sessionId: string;
      readonly kind: string;
      /** `issuer#subject`. */
      readonly principal: string;
      readonly verifier: string;
      /** Sessions the user's opening ended to make room. */
      readonly evicted: number;
    }
  | {
      readonly type: 'session.ended';
      readonly sessionId: string;
      readonly reason: SessionEndReason;
      readonly principal?: string;
    }
  | {
      readonly type: 'guard.refused';
      /** The RFC 6750 or Gatehouse code answered (`invalid_token`, `ERR_ORIGIN_FORBIDDEN`, …). */
      readonly error: string;
      /** The check that failed (`token_expired`, `token_revoked`, `missing_token`, …). */
      readonly reason?: string;
      readonly status: number;
      readonly ip: string;
      readonly transport: string;
    }
  | {
      readonly type: 'ratelimit.rejected';
      /** Which limit: `ws-connect-user`, `ws-connect-ip`, `login`, `registration`, `authorize`, … */
      readonly limit: string;
      readonly ip?: string;
      readonly principal?: string;
      readonly retryAfterSeconds: number;
    }
  | {
      readonly type: 'tool.called';
      readonly principal: string;
      readonly tool: string;
      readonly durationMs: number;
      /** `success`; `error` (the tool answered `isError` or a JSON-RPC error); `failed` (no answer). */
      readonly outcome: 'success' | 'error' | 'failed';
      readonly transport: string;
      readonly sessionId?: string;
    }
  | {
      readonly type: 'upstream.started';
      readonly upstream: string;
      readonly principal: string;
      readonly sessionId?: string;
    }
  | {
      readonly type: 'upstream.failed';
      readonly upstream: string;
      readonly reason: string;
      readonly principal?: string;
      readonly sessionId?: string;
    }
  | {
      readonly type: 'account.revoked';
      /** `idp#subject`. */
      readonly principal: string;
      readonly why: 'removed' | 'disabled' | 'password_changed' | 'signed_out_everywhere';
      readonly grants: number;
      readonly sessions: number;
      readonly consents: number;
    }
  | {
      /** An operator acted through the admin API, the console or the `gatehouse` CLI: who did what to whom. */
      readonly type: 'admin.action';
      readonly outcome: 'success' | 'failure';
      /** The stable code of a refused action (`ERR_USER_NOT_FOUND`, …). */
      readonly error?: string;
      /**
       * Who acted: `local#<user id>` of an administrator, `admin-api-token` for `admin.apiToken`, or
       * `cli:<operating-system user>` for a `gatehouse` command.
       */
      readonly actor: string;
      /** The administrator's username, when a person acted. */
      readonly actorName?: string;
      /** `user.disable`, `user.signout`, `session.end`, `grant.revoke`, `client.approve`, `keys.rotate`, … */
      readonly action: string;
      /** What it was done to: a username, session id, grant id or client id; absent for `keys.rotate`. */
      readonly target?: string;
      /** `api`, `console` or `cli`. */
      readonly via: 'api' | 'console' | 'cli';
      readonly ip?: string;
      readonly requestId?: string;
    };

export type GatehouseEventType = GatehouseEvent['type'];

export interface EventBus {
  /** Hands the event to every subscriber, synchronously; a subscriber that throws is logged, never rethrown. */
  emit(event: GatehouseEvent): void;
  /** Returns the unsubscribe function. */
  subscribe(listener: (event: GatehouseEvent) => void): () => void;
}

/**
 * One typed event stream for the whole gateway. Emitting never fails and never waits: subscribers (the
 * audit log, later metrics and tracing) must be quick and must not throw.
 *
 * @example
 * const events = createEventBus(logger);
 * events.subscribe((event) => { if (event.type === 'guard.refused') refusals.inc(); });
 * events.emit({ type: 'session.ended', sessionId, reason: 'expired' });
 */
export function createEventBus(logger: Logger): EventBus {
  const listeners = new Set<(event: GatehouseEvent) => void>();
  return {
    emit(event) {
      for (const listener of listeners) {
        try {
          listener(event);
        } catch (error) {
          logger.error({ err: error, event: event.type }, 'event subscriber failed');
        }
      }
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** An event bus nobody listens to (tests, tools that need the interface). */
export const silentEvents: EventBus = { emit: () => undefined, subscribe: () => () => undefined };
