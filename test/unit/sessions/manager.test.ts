import { describe, expect, it } from 'vitest';
import type { SessionsConfig } from '../../../src/config/schema.js';
import { isGatehouseError } from '../../../src/errors/gatehouse-error.js';
import type { Principal } from '../../../src/identity/principal.js';
import { createManualClock } from '../../../src/ops/clock.js';
import { createEventBus, type GatehouseEvent } from '../../../src/ops/events.js';
import { silentLogger } from '../../../src/ops/logger.js';
import { createSessionManager } from '../../../src/sessions/manager.js';
import { createMemoryStores } from '../../../src/stores/memory/index.js';

function principal(subject: string, issuer = 'https://issuer.test'): Principal {
  return { subject, issuer, scopes: [], claims: { sub: subject }, expiresAt: 0, verifier: 'test' };
}

function setup(overrides: Partial<SessionsConfig> = {}) {
  const clock = createManualClock();
  const stores = createMemoryStores();
  const config: SessionsConfig = {
    idleTimeoutMs: 1_000,
    pendingIdleTimeoutMs: 1_000,
    absoluteLifetimeMs: 5_000,
    maxPerUser: 2,
    onLimit: 'refuse',
    sweepIntervalMs: 1_000,
    ...overrides,
  };
  const events: GatehouseEvent[] = [];
  const bus = createEventBus(silentLogger);
  bus.subscribe((event) => events.push(event));
  const manager = createSessionManager({
    store: stores.sessions,
    config,
    clock,
    logger: silentLogger,
    events: bus,
  });
  const ended: Array<[string, string]> = [];
  manager.onEnded((id, reason) => ended.push([id, reason]));
  return { clock, manager, ended, events };
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isGatehouseError(error) ? error.code : error).toBe(code);
}

describe('session manager', () => {
  // req: MCP-SECURITY-SESSION-BINDING
  it('binds a session to its creator: another user, or the same subject from another issuer, gets 404', async () => {
    const { manager } = setup();
    const session = await manager.open(principal('alice'), 'streamable-http', {});
    expect((await manager.resume(session.id, principal('alice'))).id).toBe(session.id);
    await expectCode(manager.resume(session.id, principal('bob')), 'ERR_SESSION_NOT_FOUND');
    await expectCode(
      manager.resume(session.id, principal('alice', 'https://other.test')),
      'ERR_SESSION_NOT_FOUND',
    );
    await expectCode(manager.end(session.id, principal('bob')), 'ERR_SESSION_NOT_FOUND');
  });

  it('expires on idle time, and activity extends it', async () => {
    const { manager, clock } = setup();
    const alice = principal('alice');
    const session = await manager.open(alice, 'streamable-http', {});
    clock.advance(900);
    await manager.resume(session.id, alice);
    clock.advance(900);
    await manager.resume(session.id, alice);
    clock.advance(1_001);
    await expectCode(manager.resume(session.id, alice), 'ERR_SESSION_NOT_FOUND');
  });

  it('expires at the absolute lifetime however active', async () => {
    const { manager, clock } = setup();
    const alice = principal('alice');
    const session = await manager.open(alice, 'streamable-http', {});
    for (let i = 0; i < 5; i++) {
      clock.advance(900);
      await manager.resume(session.id, alice);
    }
    clock.advance(600);
    await expectCode(manager.resume(session.id, alice), 'ERR_SESSION_NOT_FOUND');
  });

  it('caps live sessions per user; an expired one frees its place', async () => {
    const { manager, clock } = setup();
    const alice = principal('alice');
    await manager.open(alice, 'streamable-http', {});
    await manager.open(alice, 'streamable-http', {});
    await expectCode(manager.open(alice, 'streamable-http', {}), 'ERR_SESSION_LIMIT');
    await manager.open(principal('bob'), 'streamable-http', {});
    clock.advance(1_001);
    await manager.open(alice, 'streamable-http', {});
  });

  it('admits exactly the cap under concurrent opens', async () => {
    const { manager } = setup({ maxPerUser: 3 });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => manager.open(principal('alice'), 'streamable-http', {})),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
  });

  it('sweeps expired sessions and tells listeners, once each', async () => {
    const { manager, clock, ended } = setup();
    const a = await manager.open(principal('alice'), 'streamable-http', {});
    const b = await manager.open(principal('bob'), 'streamable-http', {});
    clock.advance(500);
    await manager.resume(b.id, principal('bob'));
    clock.advance(600);
    expect(await manager.sweep()).toBe(1);
    expect(ended).toEqual([[a.id, 'expired']]);
    expect(await manager.sweep()).toBe(0);
    await manager.end(b.id, principal('bob'));
    expect(ended).toEqual([
      [a.id, 'expired'],
      [b.id, 'deleted'],
    ]);
  });

  it('another user resuming a session never extends its idle time (touch is by owner, in one step)', async () => {
    const { manager, clock } = setup();
    const alice = principal('alice');
    const session = await manager.open(alice, 'streamable-http', {});
    clock.advance(900);
    await expectCode(manager.resume(session.id, principal('mallory')), 'ERR_SESSION_NOT_FOUND');
    clock.advance(200);
    // Had mallory's request counted as activity, the session would live until 1_900.
    await expectCode(manager.resume(session.id, alice), 'ERR_SESSION_NOT_FOUND');
  });

  it('evict-oldest: at the cap a new Streamable HTTP session ends the least recently used one', async () => {
    const { manager, clock, ended, events } = setup({
      onLimit: 'evict-oldest',
      idleTimeoutMs: 10_000,
      pendingIdleTimeoutMs: 10_000,
    });
    const alice = principal('alice');
    const first = await manager.open(alice, 'streamable-http', {});
    clock.advance(10);
    const second = await manager.open(alice, 'streamable-http', {});
    clock.advance(10);
    await manager.resume(first.id, alice); // first is now the more recently used
    const third = await manager.open(alice, 'streamable-http', {});
    expect(ended).toEqual([[second.id, 'evicted']]);
    await expectCode(manager.resume(second.id, alice), 'ERR_SESSION_NOT_FOUND');
    expect((await manager.resume(first.id, alice)).id).toBe(first.id);
    expect((await manager.resume(third.id, alice)).id).toBe(third.id);
    expect(
      events.find((event) => event.type === 'session.opened' && event.sessionId === third.id),
    ).toMatchObject({
      evicted: 1,
    });
  });

  it('evict-oldest never ends a live WebSocket or SSE session: with nothing to evict, the cap refuses', async () => {
    const { manager } = setup({ onLimit: 'evict-oldest' });
    const alice = principal('alice');
    await manager.open(alice, 'websocket', {});
    await manager.open(alice, 'legacy-sse', {});
    await expectCode(manager.open(alice, 'streamable-http', {}), 'ERR_SESSION_LIMIT');
    await expectCode(manager.open(alice, 'websocket', {}), 'ERR_SESSION_LIMIT');
  });

  it('a session nobody came back to after initialize expires on the short pending idle time', async () => {
    const { manager, clock } = setup({
      idleTimeoutMs: 30_000,
      pendingIdleTimeoutMs: 2_000,
      absoluteLifetimeMs: 60_000,
    });
    const alice = principal('alice');
    const abandoned = await manager.open(alice, 'streamable-http', {});
    const used = await manager.open(alice, 'streamable-http', {});
    clock.advance(1_000);
    await manager.resume(used.id, alice, { establish: true });
    clock.advance(1_500);
    await expectCode(manager.resume(abandoned.id, alice), 'ERR_SESSION_NOT_FOUND');
    clock.advance(20_000);
    expect((await manager.resume(used.id, alice)).id).toBe(used.id);
  });

  it('issues unguessable, header-safe ids', async () => {
    const { manager } = setup({ maxPerUser: 100 });
    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) ids.add((await manager.open(principal('alice'), 'streamable-http', {})).id);
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('the sweeper paces its batches', () => {
  it('halves a batch that took longer than its slice, down to the floor, and still ends every session', async () => {
    const clock = createManualClock();
    const stores = createMemoryStores();
    const requested: number[] = [];
    const sessions = {
      ...stores.sessions,
      // A slow store: every batch takes over 15 ms of synchronous work (a loaded machine only adds to it).
      async deleteExpired(now: number, limit: number) {
        requested.push(limit);
        const until = performance.now() + 15;
        while (performance.now() < until) {
          // busy: SQLite's delete runs on the event loop like this
        }
        return stores.sessions.deleteExpired(now, limit);
      },
    };
    const manager = createSessionManager({
      store: sessions,
      config: {
        idleTimeoutMs: 1_000,
        pendingIdleTimeoutMs: 1_000,
        absoluteLifetimeMs: 5_000,
        maxPerUser: 1_000,
        onLimit: 'refuse',
        sweepIntervalMs: 1_000,
      },
      clock,
      logger: silentLogger,
      events: createEventBus(silentLogger),
    });
    for (let i = 0; i < 500; i++) await manager.open(principal(`u${i % 5}`), 'streamable-http', {});
    clock.advance(10_000);

    expect(await manager.sweep()).toBe(500);
    expect(requested.slice(0, 5)).toEqual([200, 100, 50, 25, 20]);
    expect(requested.at(-1)).toBe(20);
  });
});
