import { randomBytes } from 'node:crypto';
import type { AuditEntry, AuditStore } from '../stores/ports.js';
import type { Clock } from './clock.js';
import type { AuthEvent, EventBus, GatehouseEvent } from './events.js';
import type { Logger } from './logger.js';
import { currentRequestScope, type RequestScope } from './request-scope.js';

/** Where the authorization server reports what happened: onto the event stream. */
export interface Audit {
  record(event: AuthEvent): void;
}

/** The authorization server's view of the event stream. */
export function auditTo(events: EventBus): Audit {
  return { record: (event) => events.emit(event) };
}

/** Events that mean something was refused or went wrong: logged at `warn`. */
function isFailure(event: GatehouseEvent): boolean {
  switch (event.type) {
    case 'ratelimit.rejected':
    case 'upstream.failed':
      return true;
    case 'tool.called':
      return event.outcome === 'failed';
    case 'session.opened':
    case 'session.ended':
    case 'guard.refused':
    case 'upstream.started':
    case 'account.revoked':
      return false;
    default:
      return event.outcome === 'failure';
  }
}

/**
 * The audit trail as structured log lines (`audit: true`, the event's fields, `msg` = its type), ready
 * for a log pipeline to keep apart. Returns the unsubscribe function.
 */
export function subscribeAuditLog(events: EventBus, logger: Logger): () => void {
  const audit = logger.child({ audit: true });
  return events.subscribe((event) => {
    if (isFailure(event)) audit.warn(event, event.type);
    else audit.info(event, event.type);
  });
}

/** What the stored audit log's writer has done since it started. */
export interface AuditWriterStats {
  /** Entries waiting to be written (the batch being written excluded). */
  readonly queued: number;
  readonly written: number;
  /** Entries dropped because the queue was full (the oldest first). */
  readonly dropped: number;
  /** Appends the store refused (each retried). */
  readonly failedWrites: number;
}

export interface AuditWriterOptions {
  readonly store: AuditStore;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Entries kept waiting at most; past it the oldest are dropped (and counted). Default 10 000. */
  readonly queueMax?: number;
  /** Entries per `append`. Default 100. */
  readonly batchMax?: number;
  /**
   * How long an entry waits for others to share its `append`, in milliseconds; also the first retry
   * delay after a store error (doubled on each failure, up to `retryMaxDelayMs`). Default 200.
   */
  readonly flushIntervalMs?: number;
  /** The longest wait between two retries, in milliseconds. Default 30 000. */
  readonly retryMaxDelayMs?: number;
  /** Entries older than this many days are deleted; 0 keeps them forever. Default 90. */
  readonly retentionDays?: number;
  /** How often the retention sweep runs once `start()`ed, in milliseconds. Default one hour. */
  readonly retentionSweepIntervalMs?: number;
  /** At most one "entries dropped" warning per this many milliseconds. Default 60 000. */
  readonly dropWarningIntervalMs?: number;
}

/**
 * The stored audit log's writer: every event becomes an {@link AuditEntry}, queued in memory and
 * appended to the store in batches in the background. Recording never waits and never fails, so a slow or
 * failing store never slows or fails a request: a batch the store refused is retried with backoff, and
 * when the queue is full its oldest entries are dropped, counted, and reported in at most one warning per
 * interval.
 */
export interface AuditWriter {
  /** Queues `event`, stamped with the time and the request scope it was emitted in. Synchronous. */
  record(event: GatehouseEvent): void;
  /** Starts the retention sweep (at once, then periodically). */
  start(): void;
  /**
   * Writes everything queued, retrying failed batches, until the queue is empty or `timeoutMs` (default
   * 5 000) has passed. Resolves `true` when the queue was drained.
   */
  flush(options?: { readonly timeoutMs?: number }): Promise<boolean>;
  /** Flushes (bounded as `flush`), then stops: later events are dropped. */
  close(options?: { readonly timeoutMs?: number }): Promise<void>;
  /** One retention pass: deletes entries past `retentionDays` in small batches; returns how many. */
  sweepRetention(): Promise<number>;
  stats(): AuditWriterStats;
}

const DAY_MS = 86_400_000;
/** Entries deleted per `deleteBefore`: small, so a sweep never holds a long lock. */
const RETENTION_BATCH = 500;
/** Batches per sweep at most; the rest waits for the next sweep. */
const RETENTION_BATCHES_PER_SWEEP = 100;

/**
 * The stored form of `event`: `subject` is what follows the first `#` of its `principal`; the address and
 * the request id are the event's own, else the request scope's.
 */
export function auditEntryOf(
  event: GatehouseEvent,
  at: number,
  id: string,
  scope: RequestScope | undefined,
): AuditEntry {
  const fields = event as unknown as Readonly<Record<string, unknown>>;
  const text = (name: string) => {
    const value = fields[name];
    return typeof value === 'string' && value !== '' ? value : undefined;
  };
  const principal = text('principal');
  const hash = principal?.indexOf('#') ?? -1;
  const subject = principal !== undefined && hash >= 0 ? principal.slice(hash + 1) : undefined;
  const clientId = text('clientId');
  const outcome = text('outcome');
  const ip = text('ip') ?? scope?.clientAddress;
  const requestId = text('requestId') ?? scope?.requestId;
  return {
    id,
    at,
    type: event.type,
    ...(outcome !== undefined && { outcome }),
    ...(subject !== undefined && subject !== '' && { subject }),
    ...(principal !== undefined && { principal }),
    ...(clientId !== undefined && { clientId }),
    ...(requestId !== undefined && { requestId }),
    ...(ip !== undefined && { ip }),
    event: { ...fields },
  };
}

/**
 * Ids that sort by time across writers and by emission order within one: `at` as 13 decimal digits, `-`,
 * a sequence number within the millisecond (4 base-36 digits), then random base64url.
 */
function createIdSource(): (at: number) => string {
  let lastAt = Number.NaN;
  let sequence = 0;
  return (at) => {
    sequence = at === lastAt ? sequence + 1 : 0;
    lastAt = at;
    const time = String(Math.max(0, Math.trunc(at))).padStart(13, '0');
    return `${time}-${sequence.toString(36).padStart(4, '0')}${randomBytes(9).toString('base64url')}`;
  };
}

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

export function createAuditWriter(options: AuditWriterOptions): AuditWriter {
  const { store, clock } = options;
  const logger = options.logger.child({ component: 'audit-writer' });
  const queueMax = Math.max(1, options.queueMax ?? 10_000);
  const batchMax = Math.max(1, Math.min(options.batchMax ?? 100, queueMax));
  const intervalMs = Math.max(0, options.flushIntervalMs ?? 200);
  const retryMaxDelayMs = Math.max(intervalMs, options.retryMaxDelayMs ?? 30_000);
  const retentionDays = options.retentionDays ?? 90;
  const sweepEveryMs = options.retentionSweepIntervalMs ?? 3_600_000;
  const dropWarningEveryMs = options.dropWarningIntervalMs ?? 60_000;
  const nextId = createIdSource();

  let queue: AuditEntry[] = [];
  let inFlight: Promise<boolean> | undefined;
  let draining = 0;
  let timer: NodeJS.Timeout | undefined;
  let sweeper: NodeJS.Timeout | undefined;
  let sweeping: Promise<number> | undefined;
  let closed = false;
  let consecutiveFailures = 0;
  let written = 0;
  let dropped = 0;
  let failedWrites = 0;
  let unreportedDrops = 0;
  let lastDropWarningAt = Number.NEGATIVE_INFINITY;

  function reportDrops(force: boolean): void {
    if (unreportedDrops === 0) return;
    const now = clock.now();
    if (!force && now - lastDropWarningAt < dropWarningEveryMs) return;
    logger.warn(
      { dropped: unreportedDrops, droppedTotal: dropped, queueMax },
      'audit queue full: oldest entries dropped',
    );
    unreportedDrops = 0;
    lastDropWarningAt = now;
  }

  /** Drops the oldest queued entries beyond `queueMax`. */
  function trim(): void {
    const excess = queue.length - queueMax;
    if (excess <= 0) return;
    queue.splice(0, excess);
    dropped += excess;
    unreportedDrops += excess;
    reportDrops(false);
  }

  /**
   * Appends the oldest batch; a refused batch goes back to the head of the queue. Unless a flush is
   * draining the queue itself, each outcome arms the next background write: the rest of the queue, or
   * the same batch again after the backoff.
   */
  function writeBatch(): Promise<boolean> {
    const batch = queue.splice(0, batchMax);
    const attempt = store.append(batch).then(
      () => {
        written += batch.length;
        if (consecutiveFailures > 0) logger.info({ queued: queue.length }, 'audit log writes resumed');
        consecutiveFailures = 0;
        reportDrops(false);
        return true;
      },
      (error: unknown) => {
        failedWrites += 1;
        if (consecutiveFailures === 0) {
          logger.warn(
            { err: error, queued: queue.length + batch.length },
            'audit log write failed; retrying',
          );
        }
        consecutiveFailures += 1;
        queue = batch.concat(queue);
        trim();
        return false;
      },
    );
    inFlight = attempt.finally(() => {
      inFlight = undefined;
      if (draining === 0) scheduleNext();
    });
    return inFlight;
  }

  function schedule(delayMs: number): void {
    if (timer !== undefined || closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      if (inFlight === undefined && queue.length > 0) void writeBatch();
    }, delayMs);
    timer.unref();
  }

  /** Arms the background write the queue needs now, if any. */
  function scheduleNext(): void {
    if (queue.length === 0) return;
    if (consecutiveFailures > 0) schedule(retryDelay());
    else schedule(queue.length >= batchMax ? 0 : intervalMs);
  }

  function retryDelay(): number {
    const doublings = Math.min(Math.max(0, consecutiveFailures - 1), 20);
    return Math.min(retryMaxDelayMs, Math.max(1, intervalMs) * 2 ** doublings);
  }

  async function drain(deadline: { expired: boolean }): Promise<boolean> {
    draining += 1;
    try {
      if (timer !== undefined) {
        clearTimeout(timer);
        timer = undefined;
      }
      while (!deadline.expired && (queue.length > 0 || inFlight !== undefined)) {
        if (inFlight !== undefined) {
          await inFlight;
          continue;
        }
        if (!(await writeBatch()) && !deadline.expired) await sleep(Math.min(retryDelay(), 100));
      }
      return queue.length === 0 && inFlight === undefined;
    } finally {
      draining -= 1;
      if (draining === 0 && inFlight === undefined) scheduleNext();
    }
  }

  async function flush(timeoutMs = 5_000): Promise<boolean> {
    const deadline = { expired: false };
    let cancel: NodeJS.Timeout | undefined;
    const expiry = new Promise<false>((resolve) => {
      cancel = setTimeout(() => {
        deadline.expired = true;
        resolve(false);
      }, timeoutMs);
    });
    try {
      return await Promise.race([drain(deadline), expiry]);
    } finally {
      clearTimeout(cancel);
    }
  }

  async function sweepRetention(): Promise<number> {
    if (retentionDays <= 0) return 0;
    if (sweeping !== undefined) return sweeping;
    const run = async () => {
      const before = clock.now() - retentionDays * DAY_MS;
      let deleted = 0;
      for (let i = 0; i < RETENTION_BATCHES_PER_SWEEP; i++) {
        const removed = await store.deleteBefore(before, RETENTION_BATCH);
        deleted += removed;
        if (removed < RETENTION_BATCH) break;
      }
      if (deleted > 0) logger.info({ deleted, retentionDays }, 'audit entries past retention deleted');
      return deleted;
    };
    sweeping = run().finally(() => {
      sweeping = undefined;
    });
    return sweeping;
  }

  return {
    record(event) {
      const at = clock.now();
      if (closed) {
        dropped += 1;
        return;
      }
      queue.push(auditEntryOf(event, at, nextId(at), currentRequestScope()));
      trim();
      if (inFlight === undefined && draining === 0) scheduleNext();
    },
    start() {
      if (sweeper !== undefined || retentionDays <= 0 || closed) return;
      const sweep = () =>
        void sweepRetention().catch((error: unknown) =>
          logger.warn({ err: error }, 'audit retention sweep failed'),
        );
      sweep();
      sweeper = setInterval(sweep, sweepEveryMs);
      sweeper.unref();
    },
    flush: (flushOptions) => flush(flushOptions?.timeoutMs),
    async close(closeOptions) {
      if (sweeper !== undefined) clearInterval(sweeper);
      sweeper = undefined;
      const drained = await flush(closeOptions?.timeoutMs);
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      if (!drained) {
        dropped += queue.length;
        logger.warn({ lost: queue.length }, 'audit log not fully written before shutdown');
        queue = [];
      }
      reportDrops(true);
      await sweeping?.catch(() => undefined);
    },
    sweepRetention,
    stats: () => ({ queued: queue.length, written, dropped, failedWrites }),
  };
}
