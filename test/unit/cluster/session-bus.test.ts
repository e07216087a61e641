import { describe, expect, it, vi } from 'vitest';
import { createLiveRegistry, type LiveEntry } from '../../../src/bridge/registry.js';
import { sessionsSchema } from '../../../src/config/schema.js';
import type { Principal } from '../../../src/identity/principal.js';
import { createManualClock } from '../../../src/ops/clock.js';
import type { SessionEndReason } from '../../../src/ops/events.js';
import { silentEvents } from '../../../src/ops/events.js';
import { silentLogger } from '../../../src/ops/logger.js';
import { createSessionManager } from '../../../src/sessions/manager.js';
import { createMemoryStores } from '../../../src/stores/memory/index.js';
import { createLocalBusHub } from '../../helpers/local-bus.js';

const alice = {
  issuer: 'https://gh.example/',
  subject: 'alice',
  verifier: 'local',
  claims: {},
} as unknown as Principal;

/** Two instances on one store (a memory store stands for the shared engine), each with its manager and registry. */
function twoInstances() {
  const stores = createMemoryStores();
  const clock = createManualClock();
  const hub = createLocalBusHub();
  const config = sessionsSchema.parse({});
  const instance = () => {
    const bus = hub.bus();
    const sessions = createSessionManager({
      store: stores.sessions,
      config,
      clock,
      logger: silentLogger,
      events: silentEvents,
      bus,
    });
    return { bus, sessions, registry: createLiveRegistry(sessions) };
  };
  return { stores, clock, config, a: instance(), b: instance() };
}

/** A live entry that records why it was released. */
function entry(sessionId: string): LiveEntry & { ended: SessionEndReason[] } {
  const ended: SessionEndReason[] = [];
  return { sessionId, principal: alice, ended, sessionEnded: (reason) => ended.push(reason) };
}

describe('sessions across instances', () => {
  it('releases the upstream another instance holds when a session ends here', async () => {
    const { a, b } = twoInstances();
    const record = await a.sessions.open(alice, 'streamable-http', {});
    const heldOnB = entry(record.id);
    b.registry.add(heldOnB);

    await a.sessions.end(record.id, alice, 'deleted');
    expect(a.bus.published).toEqual([{ type: 'session.ended', sessionId: record.id, reason: 'deleted' }]);
    await vi.waitFor(() => expect(heldOnB.ended).toEqual(['deleted']));
    expect(b.registry.get(record.id)).toBeUndefined();
  });

  it('does not announce expiry (a sweep can end thousands): each instance reconciles its own', async () => {
    const { clock, config, a, b } = twoInstances();
    const record = await a.sessions.open(alice, 'streamable-http', {});
    const kept = await a.sessions.open(alice, 'streamable-http', {});
    await a.sessions.resume(kept.id, alice, { establish: true });
    const heldOnB = entry(record.id);
    const keptOnB = entry(kept.id);
    b.registry.add(heldOnB);
    b.registry.add(keptOnB);

    clock.advance(config.pendingIdleTimeoutMs + 1);
    expect(await a.sessions.sweep()).toBe(1);
    expect(a.bus.published).toEqual([]);

    expect(await b.registry.reconcile()).toBe(1);
    expect(heldOnB.ended).toEqual(['expired']);
    expect(keptOnB.ended).toEqual([]);
  });

  it("keeps every live entry when the store cannot say (an outage ends nobody's session)", async () => {
    const { stores, a } = twoInstances();
    const record = await a.sessions.open(alice, 'streamable-http', {});
    const held = entry(record.id);
    a.registry.add(held);
    stores.sessions.get = () => Promise.reject(new Error('store down'));

    expect(await a.registry.reconcile()).toBe(0);
    expect(held.ended).toEqual([]);
  });
});
