import { randomBytes } from 'node:crypto';
import type { SessionsConfig } from '../config/schema.js';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { type Principal, principalKey } from '../identity/principal.js';
import type { Clock } from '../ops/clock.js';
import type { EventBus, SessionEndReason } from '../ops/events.js';
import type { Logger } from '../ops/logger.js';
import type { ClusterBus, SessionKind, SessionRecord, SessionStore } from '../stores/ports.js';

export type { SessionEndReason };

export interface SessionManager {
  /**
   * Opens a session for `principal`. At `sessions.maxPerUser`, a Streamable HTTP session ends the user's
   * least recently used Streamable HTTP session (`onLimit: evict-oldest`, the default; its client gets 404
   * and re-initializes); anything else, or `onLimit: refuse`, throws `ERR_SESSION_LIMIT` (429). A
   * Streamable HTTP session starts with the short `pendingIdleTimeoutMs` until {@link resume} establishes it.
   */
  open(principal: Principal, kind: SessionKind, data: Record<string, unknown>): Promise<SessionRecord>;
  /**
   * The live session `id` if and only if it belongs to `principal`, with its activity recorded in the same
   * atomic step (another user's request never extends someone else's session). `establish` marks the
   * session in use, so from now on the full idle timeout applies. Unknown, expired, ended and other users'
   * sessions all throw the same `ERR_SESSION_NOT_FOUND` (404): a session id reveals nothing about whose it is.
   */
  resume(id: string, principal: Principal, options?: { establish?: boolean }): Promise<SessionRecord>;
  /** Compare-and-swap update of the session's data; retried by the caller on `undefined`. */
  update(record: SessionRecord, data: Record<string, unknown>): Promise<SessionRecord | undefined>;
  /** Ends a session bound to `principal`, atomically (404 for anyone else's). */
  end(id: string, principal: Principal, reason?: SessionEndReason): Promise<void>;
  /** Live sessions of `principal`. */
  list(principal: Principal): Promise<SessionRecord[]>;
  /**
   * Ends every expired session, in batches paced to about 10 ms of work each that yield to the event loop
   * in between; returns how many ended.
   */
  sweep(): Promise<number>;
  /** Whether the session is still in the store and live (another instance may have ended it). */
  isLive(id: string): Promise<boolean>;
  /**
   * Registers a listener called for every session that ends: once when it ends on this instance, and when
   * another instance on the same store announces an end on the cluster bus (possibly a second time for
   * this instance's own ends: listeners release what they hold and ignore ids they do not know).
   */
  onEnded(listener: (id: string, reason: SessionEndReason) => void): void;
  /** Stops listening to the cluster bus. */
  close(): void;
}

/** 256 bits from the CSPRNG, base64url: unguessable and safe in a header (visible ASCII only). */
export function newSessionId(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The sweeper's batches: it starts at `start` sessions and adapts so that one batch (the store's delete,
 * synchronous for SQLite, and ending each session) takes about `sliceMs`, halving when a batch ran long and
 * doubling when it ran short, within `min`…`max`. Between batches it yields to the event loop, so even a
 * backlog of a million expired sessions never holds requests up for long.
 */
const SWEEP_BATCH = { start: 200, min: 20, max: 2_000, sliceMs: 10 } as const;

export function createSessionManager(deps: {
  store: SessionStore;
  config: SessionsConfig;
  clock: Clock;
  logger: Logger;
  events: EventBus;
  /**
   * The cluster bus of a shared store: ends made here are announced on it (other instances release the
   * upstreams they hold for the session), and ends announced by others reach this instance's listeners.
   * Expiry is not announced (a sweep can end thousands at once): each instance checks its own live
   * sessions against the store instead (see the live registry's reconcile).
   */
  bus?: ClusterBus | undefined;
}): SessionManager {
  const { store, config, clock, logger, events, bus } = deps;
  const listeners: Array<(id: string, reason: SessionEndReason) => void> = [];
  const evictKinds: readonly SessionKind[] = config.onLimit === 'evict-oldest' ? ['streamable-http'] : [];

  const notFound = () => new GatehouseError('ERR_SESSION_NOT_FOUND', 'Session not found');

  function notify(id: string, reason: SessionEndReason): void {
    for (const listener of listeners) {
      try {
        listener(id, reason);
      } catch (error) {
        logger.error({ err: error, sessionId: id }, 'session end listener failed');
      }
    }
  }

  function ended(record: Pick<SessionRecord, 'id' | 'principalKey'>, reason: SessionEndReason): void {
    events.emit({ type: 'session.ended', sessionId: record.id, reason, principal: record.principalKey });
    notify(record.id, reason);
    if (bus !== undefined && reason !== 'expired') {
      bus.publish({ type: 'session.ended', sessionId: record.id, reason }).catch((error: unknown) => {
        // The instance holding the upstream still finds the session gone when it reconciles.
        logger.warn({ err: error, sessionId: record.id }, 'session end not announced on the cluster bus');
      });
    }
  }

  const unsubscribe = bus?.subscribe((message) => {
    if (message.type !== 'session.ended') return;
    notify(message.sessionId, isEndReason(message.reason) ? message.reason : 'deleted');
  });

  return {
    async open(principal, kind, data) {
      const now = clock.now();
      // Only a Streamable HTTP session can be opened and then abandoned with nothing live behind it.
      const idleTimeoutMs =
        kind === 'streamable-http'
          ? Math.min(config.pendingIdleTimeoutMs, config.idleTimeoutMs)
          : config.idleTimeoutMs;
      const record: SessionRecord = {
        id: newSessionId(),
        principalKey: principalKey(principal),
        kind,
        createdAt: now,
        lastSeenAt: now,
        idleTimeoutMs,
        idleExpiresAt: Math.min(now + idleTimeoutMs, now + config.absoluteLifetimeMs),
        absoluteExpiresAt: now + config.absoluteLifetimeMs,
        version: 1,
        data,
      };
      const result = await store.create(
        record,
        { max: config.maxPerUser, ...(evictKinds.includes(kind) && { evictKinds }) },
        now,
      );
      if (!result.created) {
        throw new GatehouseError(
          'ERR_SESSION_LIMIT',
          `session limit reached: at most ${config.maxPerUser} live sessions per user; end one or wait for one to expire`,
          {
            retryAfterSeconds: Math.ceil(config.idleTimeoutMs / 1000),
            details: { maxPerUser: config.maxPerUser },
          },
        );
      }
      for (const evicted of result.evicted) ended(evicted, 'evicted');
      events.emit({
        type: 'session.opened',
        sessionId: record.id,
        kind,
        principal: record.principalKey,
        verifier: principal.verifier,
        evicted: result.evicted.length,
      });
      return record;
    },

    async resume(id, principal, options = {}) {
      const record = await store.touch(
        id,
        principalKey(principal),
        clock.now(),
        options.establish === true ? config.idleTimeoutMs : undefined,
      );
      if (record === undefined) throw notFound();
      return record;
    },

    update(record, data) {
      return store.update(record.id, record.version, data);
    },

    async end(id, principal, reason = 'deleted') {
      const record = await store.deleteOwned(id, principalKey(principal));
      if (record === undefined) throw notFound();
      ended(record, reason);
    },

    list(principal) {
      return store.listByPrincipal(principalKey(principal), clock.now());
    },

    async sweep() {
      let total = 0;
      let batch: number = SWEEP_BATCH.start;
      for (;;) {
        // Wall time of the work, not the injected clock: this paces the event loop, not the sessions.
        const started = performance.now();
        const removed = await store.deleteExpired(clock.now(), batch);
        for (const record of removed) ended(record, 'expired');
        total += removed.length;
        if (removed.length < batch) break;
        const tookMs = performance.now() - started;
        if (tookMs > SWEEP_BATCH.sliceMs) batch = Math.max(SWEEP_BATCH.min, Math.floor(batch / 2));
        else if (tookMs < SWEEP_BATCH.sliceMs / 4) batch = Math.min(SWEEP_BATCH.max, batch * 2);
        // Yield between batches so a large backlog never blocks request handling.
        await new Promise((resolve) => setImmediate(resolve));
      }
      return total;
    },

    async isLive(id) {
      return (await store.get(id, clock.now())) !== undefined;
    },

    onEnded(listener) {
      listeners.push(listener);
    },

    close() {
      unsubscribe?.();
    },
  };
}

const END_REASONS: ReadonlySet<string> = new Set<SessionEndReason>([
  'deleted',
  'expired',
  'evicted',
  'revoked',
  'upstream_failed',
  'shutdown',
  'ended_by_operator',
]);

function isEndReason(reason: string): reason is SessionEndReason {
  return END_REASONS.has(reason);
}

/**
 * Runs `manager.sweep()` every `intervalMs`, then `afterSweep` (the live registry's reconcile), never
 * overlapping runs; the timer does not keep the process alive.
 */
export function startSweeper(
  manager: SessionManager,
  intervalMs: number,
  logger: Logger,
  afterSweep?: () => Promise<unknown>,
): { stop(): void } {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    manager
      .sweep()
      .catch((error: unknown) => logger.error({ err: error }, 'session sweep failed'))
      .then(() => afterSweep?.())
      .catch((error: unknown) => logger.error({ err: error }, 'live session check failed'))
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
