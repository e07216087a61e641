import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { GatehouseError } from '../../../src/errors/gatehouse-error.js';
import { type AuditWriterOptions, auditEntryOf, createAuditWriter } from '../../../src/ops/audit.js';
import { createManualClock } from '../../../src/ops/clock.js';
import type { GatehouseEvent } from '../../../src/ops/events.js';
import { createLogger } from '../../../src/ops/logger.js';
import { runInRequestScope } from '../../../src/ops/request-scope.js';
import { createMemoryAuditStore } from '../../../src/stores/memory/audit.js';
import type { AuditEntry, AuditStore } from '../../../src/stores/ports.js';

/** The memory audit store behind a switch: while `down`, every call fails as an unreachable engine does. */
function switchableStore() {
  const real = createMemoryAuditStore().store;
  const state = { down: false, appends: 0 };
  const unavailable = () => new GatehouseError('ERR_STORE_UNAVAILABLE', 'store down');
  const store: AuditStore = {
    async append(entries) {
      state.appends += 1;
      if (state.down) throw unavailable();
      await real.append(entries);
    },
    async query(query) {
      return real.query(query);
    },
    async deleteBefore(before, limit) {
      if (state.down) throw unavailable();
      return real.deleteBefore(before, limit);
    },
  };
  return { store, state, all: () => real.query({ order: 'asc', limit: 1000 }) };
}

function capturedLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), lines };
}

/** A writer (manual clock, captured log) on a switchable store that is down from the start. */
function writerOnDownStore(options: Omit<AuditWriterOptions, 'store' | 'clock' | 'logger'>) {
  const clock = createManualClock();
  const { store, state, all } = switchableStore();
  const { logger, lines } = capturedLogger();
  state.down = true;
  return { clock, state, all, lines, writer: createAuditWriter({ store, clock, logger, ...options }) };
}

const login = (n: number): GatehouseEvent => ({
  type: 'login',
  outcome: 'success',
  principal: `local#user-${n}`,
  clientId: 'app',
});

const numbers = (entries: readonly AuditEntry[]) =>
  entries.map((entry) => Number(String(entry.principal).slice('local#user-'.length)));

describe('auditEntryOf', () => {
  it('names the user, client, address and request, and keeps the event whole', () => {
    const entry = auditEntryOf(
      {
        type: 'oauth.token.issued',
        outcome: 'failure',
        error: 'invalid_grant',
        principal: 'local#u-1#odd',
        clientId: 'cli',
        ip: '203.0.113.9',
      },
      1_767_225_600_000,
      'id-1',
      { requestId: 'req-1', clientAddress: '198.51.100.1' },
    );
    expect(entry).toEqual({
      id: 'id-1',
      at: 1_767_225_600_000,
      type: 'oauth.token.issued',
      outcome: 'failure',
      subject: 'u-1#odd',
      principal: 'local#u-1#odd',
      clientId: 'cli',
      requestId: 'req-1',
      // The event's own address wins over the request scope's.
      ip: '203.0.113.9',
      event: {
        type: 'oauth.token.issued',
        outcome: 'failure',
        error: 'invalid_grant',
        principal: 'local#u-1#odd',
        clientId: 'cli',
        ip: '203.0.113.9',
      },
    });
  });

  it('takes the address from the request scope, and leaves out what nobody knows', () => {
    const scoped = auditEntryOf({ type: 'session.ended', sessionId: 's', reason: 'deleted' }, 5, 'x', {
      requestId: 'r',
      clientAddress: '192.0.2.7',
    });
    expect(scoped).toEqual({
      id: 'x',
      at: 5,
      type: 'session.ended',
      requestId: 'r',
      ip: '192.0.2.7',
      event: { type: 'session.ended', sessionId: 's', reason: 'deleted' },
    });
    const named = auditEntryOf(
      {
        type: 'admin.action',
        outcome: 'success',
        actor: 'admin-api-token',
        action: 'keys.rotate',
        via: 'api',
        requestId: 'own',
      },
      5,
      'z',
      { requestId: 'scope', clientAddress: '192.0.2.7' },
    );
    expect(named).toMatchObject({ requestId: 'own', ip: '192.0.2.7', outcome: 'success' });
    const bare = auditEntryOf(
      { type: 'session.ended', sessionId: 's', reason: 'expired' },
      5,
      'y',
      undefined,
    );
    expect(Object.keys(bare).sort()).toEqual(['at', 'event', 'id', 'type']);
  });
});

describe('createAuditWriter', () => {
  it('writes events in the background with time-ordered ids, the request scope and the subject', async () => {
    const clock = createManualClock(Date.UTC(2026, 5, 1));
    const { store, all } = switchableStore();
    const writer = createAuditWriter({ store, clock, logger: capturedLogger().logger, flushIntervalMs: 5 });
    runInRequestScope({ requestId: 'req-a', clientAddress: '192.0.2.1' }, () => writer.record(login(1)));
    writer.record(login(2));
    clock.advance(1);
    writer.record(login(3));
    await vi.waitFor(async () => expect(await all()).toHaveLength(3), { timeout: 10_000, interval: 10 });
    const entries = await all();
    expect(numbers(entries)).toEqual([1, 2, 3]);
    const [first, second, third] = entries as [AuditEntry, AuditEntry, AuditEntry];
    expect(first.id).toMatch(/^\d{13}-[A-Za-z0-9_-]+$/);
    expect(first.id.slice(0, 13)).toBe(String(Date.UTC(2026, 5, 1)).padStart(13, '0'));
    // Same millisecond: the ids still sort in the order the events were emitted.
    expect(first.id < second.id && second.id < third.id).toBe(true);
    expect(first).toMatchObject({ requestId: 'req-a', ip: '192.0.2.1', subject: 'user-1', clientId: 'app' });
    expect(second.requestId).toBeUndefined();
    expect(third.at).toBe(Date.UTC(2026, 5, 1) + 1);
    expect(writer.stats()).toMatchObject({ queued: 0, written: 3, dropped: 0 });
    await writer.close();
  });

  it('bounds the queue, dropping the oldest entries, and warns once per interval, not per entry', async () => {
    const { clock, state, all, lines, writer } = writerOnDownStore({
      queueMax: 5,
      batchMax: 2,
      flushIntervalMs: 5,
    });
    // All in one tick: no write can start in between.
    for (let n = 0; n < 20; n++) writer.record(login(n));
    expect(writer.stats()).toMatchObject({ queued: 5, dropped: 15 });
    const warnings = () => lines.filter((line) => line.msg === 'audit queue full: oldest entries dropped');
    expect(warnings()).toHaveLength(1);

    clock.advance(60_000);
    writer.record(login(20));
    expect(writer.stats().dropped).toBe(16);
    expect(warnings()).toHaveLength(2);
    expect(warnings()[1]).toMatchObject({ level: 40, queueMax: 5 });

    state.down = false;
    expect(await writer.flush()).toBe(true);
    // The newest five survived, in order.
    expect(numbers(await all())).toEqual([16, 17, 18, 19, 20]);
    await writer.close();
  });

  it('keeps a batch the store refused and retries it with backoff until the store is back', async () => {
    const { state, all, lines, writer } = writerOnDownStore({
      batchMax: 2,
      flushIntervalMs: 5,
      retryMaxDelayMs: 40,
    });
    for (let n = 0; n < 5; n++) writer.record(login(n));
    await vi.waitFor(() => expect(writer.stats().failedWrites).toBeGreaterThanOrEqual(3), {
      timeout: 10_000,
      interval: 10,
    });
    expect(writer.stats()).toMatchObject({ written: 0, dropped: 0 });
    state.down = false;
    await vi.waitFor(async () => expect(await all()).toHaveLength(5), { timeout: 10_000, interval: 10 });
    expect(numbers(await all())).toEqual([0, 1, 2, 3, 4]);
    // One warning when the failures began and one line when writing resumed, however many retries.
    expect(lines.filter((line) => line.msg === 'audit log write failed; retrying')).toHaveLength(1);
    expect(lines.filter((line) => line.msg === 'audit log writes resumed')).toHaveLength(1);
    await writer.close();
  });

  it('flush waits for the queue to drain, bounded by its deadline', async () => {
    const clock = createManualClock();
    const { store, state, all } = switchableStore();
    const writer = createAuditWriter({
      store,
      clock,
      logger: capturedLogger().logger,
      // Long enough that only flush() can have written anything.
      flushIntervalMs: 60_000,
    });
    for (let n = 0; n < 3; n++) writer.record(login(n));
    expect(await writer.flush()).toBe(true);
    expect(numbers(await all())).toEqual([0, 1, 2]);

    state.down = true;
    writer.record(login(3));
    expect(await writer.flush({ timeoutMs: 150 })).toBe(false);
    expect(writer.stats().queued).toBe(1);

    state.down = false;
    await writer.close();
    expect(numbers(await all())).toEqual([0, 1, 2, 3]);
    // Closed: later events are not written.
    writer.record(login(4));
    expect(await writer.flush()).toBe(true);
    expect(await all()).toHaveLength(4);
    expect(writer.stats().dropped).toBe(1);
  });

  it('deletes entries past retentionDays in batches, and keeps everything with 0', async () => {
    const day = 86_400_000;
    const clock = createManualClock(Date.UTC(2026, 0, 1));
    const { store, all } = switchableStore();
    const writer = createAuditWriter({ store, clock, logger: capturedLogger().logger, retentionDays: 30 });
    for (let n = 0; n < 1_200; n++) writer.record(login(n));
    clock.advance(20 * day);
    writer.record(login(9_999));
    expect(await writer.flush()).toBe(true);
    clock.advance(15 * day);
    // 1 200 entries are 35 days old (more than one deleteBefore batch), one is 15 days old.
    expect(await writer.sweepRetention()).toBe(1_200);
    expect(numbers(await all())).toEqual([9_999]);
    await writer.close();

    const keeper = createAuditWriter({ store, clock, logger: capturedLogger().logger, retentionDays: 0 });
    clock.advance(365 * day);
    expect(await keeper.sweepRetention()).toBe(0);
    expect(await all()).toHaveLength(1);
    await keeper.close();
  });
});
