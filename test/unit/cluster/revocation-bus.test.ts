import { afterEach, describe, expect, it, vi } from 'vitest';
import { createManualClock } from '../../../src/ops/clock.js';
import { silentLogger } from '../../../src/ops/logger.js';
import { createMemoryStores } from '../../../src/stores/memory/index.js';
import type { Stores } from '../../../src/stores/ports.js';
import { createRevocationList, type RevocationList } from '../../../src/tokens/revocation.js';
import { createLocalBusHub, type LocalBus } from '../../helpers/local-bus.js';

/** Two instances on one store (one memory store stands for the shared engine), each with its bus. */
function twoInstances() {
  const stores: Stores = createMemoryStores();
  const clock = createManualClock();
  const hub = createLocalBusHub();
  const watermarkReads = vi.spyOn(stores.revocations, 'watermark');
  const instance = () => {
    const bus = hub.bus();
    const list = createRevocationList({ store: stores.revocations, clock, logger: silentLogger, bus });
    list.start(60_000);
    return { bus, list };
  };
  return { stores, clock, watermarkReads, a: instance(), b: instance() };
}

const jti = (id: string, now: number) => ({
  kind: 'jti' as const,
  id,
  revokedAt: now,
  expiresAt: now + 60_000,
});

/**
 * Resolves once `list` trusts its bus: a `sync` reads nothing from the store. Until its first load after
 * (re)connecting completes it still reads the watermark; how many turns that takes depends on the machine.
 */
async function untilPushed(
  list: RevocationList,
  watermarkReads: { mockClear(): void; mock: { calls: unknown[] } },
) {
  await vi.waitFor(async () => {
    watermarkReads.mockClear();
    await list.sync();
    expect(watermarkReads.mock.calls).toHaveLength(0);
  });
}

describe('revocations across instances on the cluster bus', () => {
  const lists: RevocationList[] = [];
  afterEach(() => {
    for (const list of lists.splice(0)) list.stop();
  });

  it('delivers a revocation made on one instance to the other without a store read per request', async () => {
    const { clock, watermarkReads, a, b } = twoInstances();
    lists.push(a.list, b.list);
    await untilPushed(b.list, watermarkReads);

    watermarkReads.mockClear();
    for (let i = 0; i < 10; i++) await b.list.sync();
    expect(watermarkReads).not.toHaveBeenCalled();

    await a.list.revoke(jti('t1', clock.now()));
    expect(a.bus.published).toEqual([{ type: 'revocations.changed' }]);
    await vi.waitFor(() => expect(b.list.isRevoked({ jti: 't1' })).toBe(true));
  });

  it('checks the store watermark on every request while the bus is down, and catches up when it is back', async () => {
    const { stores, clock, watermarkReads, a, b } = twoInstances();
    lists.push(a.list, b.list);
    await untilPushed(b.list, watermarkReads);
    (b.bus as LocalBus).disconnect();
    watermarkReads.mockClear();

    // Written by another process that could not announce it (a CLI on the same store, say).
    await stores.revocations.add(jti('t2', clock.now()));
    await b.list.sync();
    expect(watermarkReads).toHaveBeenCalledTimes(1);
    expect(b.list.isRevoked({ jti: 't2' })).toBe(true);

    await stores.revocations.add(jti('t3', clock.now()));
    b.bus.reconnect();
    await vi.waitFor(() => expect(b.list.isRevoked({ jti: 't3' })).toBe(true));
    await untilPushed(b.list, watermarkReads);
  });

  it('announces an entry the store already holds (a revoked grant) when it is remembered', async () => {
    const { stores, clock, a, b } = twoInstances();
    lists.push(a.list, b.list);
    const entry = {
      kind: 'grant' as const,
      id: 'g1',
      revokedAt: clock.now(),
      expiresAt: clock.now() + 60_000,
    };
    // grants.revoke writes the entry with the grant, in one step; the list then remembers it.
    await stores.revocations.add(entry);
    await a.list.remember(entry);

    await vi.waitFor(() => expect(b.list.isRevoked({ sid: 'g1' })).toBe(true));
  });
});
