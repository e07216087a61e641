import { randomBytes } from 'node:crypto';
import type { SessionsConfig } from '../config/schema.js';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { type Principal, principalKey } from '../identity/principal.js';
import type { Clock } from '../ops/clock.js';
import type { Logger } from '../ops/logger.js';
import type { SessionKind, SessionRecord, SessionStore } from '../stores/ports.js';

/** Why a session ended; passed to `onEnded` listeners (which reap upstreams) and logged. */
export type SessionEndReason = 'deleted' | 'expired' | 'shutdown';

export interface SessionManager {
  /** Opens a session for `principal`; throws `ERR_SESSION_LIMIT` (429) when the user is at the cap. */
  open(principal: Principal, kind: SessionKind, data: Record<string, unknown>): Promise<SessionRecord>;
  /**
   * The live session `id` if and only if it belongs to `principal`, with its activity recorded.
   * Unknown, expired, ended and other users' sessions all throw the same `ERR_SESSION_NOT_FOUND` (404),
   * so a session id reveals nothing about whose it is.
   */
  resume(id: string, principal: Principal): Promise<SessionRecord>;
  /** Compare-and-swap update of the session's data; retried by the caller on `undefined`. */
  update(record: SessionRecord, data: Record<string, unknown>): Promise<SessionRecord | undefined>;
  /** Ends a session bound to `principal` (404 for anyone else's). */
  end(id: string, principal: Principal): Promise<void>;
  /** Live sessions of `principal`. */
  list(principal: Principal): Promise<SessionRecord[]>;
  /** Ends every expired session, in batches that yield to the event loop; returns how many ended. */
  sweep(): Promise<number>;
  /** Registers a listener called once for every session that ends on this instance. */
  onEnded(listener: (id: string, reason: SessionEndReason) => void): void;
}

/** 256 bits from the CSPRNG, base64url: unguessable and safe in a header (visible ASCII only). */
export function newSessionId(): string {
  return randomBytes(32).toString('base64url');
}

const SWEEP_BATCH = 200;

export function createSessionManager(deps: {
  store: SessionStore;
  config: SessionsConfig;
  clock: Clock;
  logger: Logger;
}): SessionManager {
  const { store, config, clock, logger } = deps;
  const listeners: Array<(id: string, reason: SessionEndReason) => void> = [];

  const notFound = () => new GatehouseError('ERR_SESSION_NOT_FOUND', 'Session not found');

  function emitEnded(id: string, reason: SessionEndReason): void {
    for (const listener of listeners) {
      try {
        listener(id, reason);
      } catch (error) {
        logger.error({ err: error, sessionId: id }, 'session end listener failed');
      }
    }
  }

  return {
    async open(principal, kind, data) {
      const now = clock.now();
      const record: SessionRecord = {
        id: newSessionId(),
        principalKey: principalKey(principal),
        kind,
        createdAt: now,
        lastSeenAt: now,
        idleExpiresAt: Math.min(now + config.idleTimeoutMs, now + config.absoluteLifetimeMs),
        absoluteExpiresAt: now + config.absoluteLifetimeMs,
        version: 1,
        data,
      };
      const result = await store.create(record, config.maxPerUser, now);
      if (!result.created) {
        throw new GatehouseError(
          'ERR_SESSION_LIMIT',
          `session limit reached: at most ${config.maxPerUser} live sessions per user; end one (DELETE) or wait for one to expire`,
          {
            retryAfterSeconds: Math.ceil(config.idleTimeoutMs / 1000),
            details: { maxPerUser: config.maxPerUser },
          },
        );
      }
      logger.info(
        { sessionId: record.id, kind, user: principal.subject, verifier: principal.verifier },
        'session opened',
      );
      return record;
    },

    async resume(id, principal) {
      const record = await store.touch(id, clock.now(), config.idleTimeoutMs);
      if (record === undefined) throw notFound();
      if (record.principalKey !== principalKey(principal)) {
        logger.warn({ sessionId: id, user: principal.subject }, 'session presented by a different user');
        throw notFound();
      }
      return record;
    },

    update(record, data) {
      return store.update(record.id, record.version, data);
    },

    async end(id, principal) {
      const record = await store.get(id, clock.now());
      if (record === undefined || record.principalKey !== principalKey(principal)) throw notFound();
      if (await store.delete(id)) {
        logger.info({ sessionId: id, user: principal.subject }, 'session ended by client');
        emitEnded(id, 'deleted');
      }
    },

    list(principal) {
      return store.listByPrincipal(principalKey(principal), clock.now());
    },

    async sweep() {
      let total = 0;
      for (;;) {
        const removed = await store.deleteExpired(clock.now(), SWEEP_BATCH);
        for (const record of removed) emitEnded(record.id, 'expired');
        total += removed.length;
        if (removed.length < SWEEP_BATCH) break;
        // Yield between batches so a large backlog never blocks request handling.
        await new Promise((resolve) => setImmediate(resolve));
      }
      if (total > 0) logger.info({ count: total }, 'expired sessions ended');
      return total;
    },

    onEnded(listener) {
      listeners.push(listener);
    },
  };
}

/** Runs `manager.sweep()` every `intervalMs`, never overlapping runs; the timer does not keep the process alive. */
export function startSweeper(manager: SessionManager, intervalMs: number, logger: Logger): { stop(): void } {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    manager
      .sweep()
      .catch((error: unknown) => logger.error({ err: error }, 'session sweep failed'))
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
