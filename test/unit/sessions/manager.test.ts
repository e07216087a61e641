import { describe, expect, it } from 'vitest';
import { isGatehouseError } from '../../../src/errors/gatehouse-error.js';
import type { Principal } from '../../../src/identity/principal.js';
import { createManualClock } from '../../../src/ops/clock.js';
import { silentLogger } from '../../../src/ops/logger.js';
import { createSessionManager } from '../../../src/sessions/manager.js';
import { createMemoryStores } from '../../../src/stores/memory/index.js';

function principal(subject: string, issuer = 'https://issuer.test'): Principal {
  return { subject, issuer, scopes: [], claims: { sub: subject }, expiresAt: 0, verifier: 'test' };
}

function setup(
  overrides: Partial<{ idleTimeoutMs: number; absoluteLifetimeMs: number; maxPerUser: number }> = {},
) {
  const clock = createManualClock();
  const stores = createMemoryStores();
  const config = {
    idleTimeoutMs: 1_000,
    absoluteLifetimeMs: 5_000,
    maxPerUser: 2,
    sweepIntervalMs: 1_000,
    ...overrides,
  };
  const manager = createSessionManager({ store: stores.sessions, config, clock, logger: silentLogger });
  const ended: Array<[string, string]> = [];
  manager.onEnded((id, reason) => ended.push([id, reason]));
  return { clock, manager, ended };
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isGatehouseError(error) ? error.code : error).toBe(code);
}

describe('session manager', () => {
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

  it('issues unguessable, header-safe ids', async () => {
    const { manager } = setup({ maxPerUser: 100 });
    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) ids.add((await manager.open(principal('alice'), 'streamable-http', {})).id);
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
