import { describe, expect, it } from 'vitest';
import type { ClusterBus, ClusterMessage } from '../../src/stores/ports.js';
import { present, type StoresHarness, unique, useContractHarness } from './harness.js';

/** Resolves with the first message `bus` delivers that `match` accepts; rejects after `ms`. */
function nextMessage(
  bus: ClusterBus,
  match: (message: ClusterMessage) => boolean,
  ms = 5_000,
): Promise<ClusterMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`no matching message within ${ms} ms`));
    }, ms);
    const unsubscribe = bus.subscribe((message) => {
      if (!match(message)) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(message);
    });
  });
}

/**
 * Registers the `ClusterBus` contract for an engine several instances share: a message published through
 * one connection reaches the subscribers of every connection on the same data, and nothing else.
 *
 * @example
 * ```ts
 * describeClusterBusContract('redis', redisHarness());
 * ```
 */
export function describeClusterBusContract(name: string, makeStores: () => Promise<StoresHarness>): void {
  describe(`ClusterBus contract: ${name}`, () => {
    const ctx = useContractHarness(name, makeStores, { twoConnections: true });

    it('is connected once the stores are open', () => {
      expect(present(ctx.stores.bus).connected).toBe(true);
    });

    it('delivers a message published on one connection to the other and to itself', async () => {
      const [first, second] = await ctx.racers();
      const here = present(first?.bus);
      const there = present(second?.bus);
      const sessionId = unique('s');
      const match = (m: ClusterMessage) => m.type === 'session.ended' && m.sessionId === sessionId;

      const received = Promise.all([nextMessage(here, match), nextMessage(there, match)]);
      await here.publish({ type: 'session.ended', sessionId, reason: 'ended_by_client' });

      expect(await received).toEqual([
        { type: 'session.ended', sessionId, reason: 'ended_by_client' },
        { type: 'session.ended', sessionId, reason: 'ended_by_client' },
      ]);
    });

    it('delivers every message type intact, in the order one connection published them', async () => {
      const [first, second] = await ctx.racers();
      const there = present(second?.bus);
      const seen: ClusterMessage[] = [];
      const unsubscribe = there.subscribe((m) => seen.push(m));
      const sessionId = unique('s');
      const sent: ClusterMessage[] = [
        { type: 'revocations.changed' },
        { type: 'signing-keys.changed' },
        { type: 'session.ended', sessionId, reason: 'revoked' },
      ];
      const last = nextMessage(there, (m) => m.type === 'session.ended' && m.sessionId === sessionId);
      for (const message of sent) await present(first?.bus).publish(message);
      await last;
      unsubscribe();

      expect(seen.filter((m) => m.type !== 'session.ended' || m.sessionId === sessionId)).toEqual(sent);
    });

    it('stops calling a listener once it unsubscribed', async () => {
      const bus = present(ctx.stores.bus);
      const calls: ClusterMessage[] = [];
      const unsubscribe = bus.subscribe((m) => calls.push(m));
      unsubscribe();
      const sessionId = unique('s');
      const later = nextMessage(bus, (m) => m.type === 'session.ended' && m.sessionId === sessionId);
      await bus.publish({ type: 'session.ended', sessionId, reason: 'expired' });
      await later;

      expect(calls).toEqual([]);
    });

    it('keeps buses on different data apart', async () => {
      const other = await makeStores();
      try {
        const sessionId = unique('s');
        const stray: ClusterMessage[] = [];
        const unsubscribe = present(other.stores.bus).subscribe((m) => stray.push(m));
        const own = nextMessage(
          present(ctx.stores.bus),
          (m) => m.type === 'session.ended' && m.sessionId === sessionId,
        );
        await present(ctx.stores.bus).publish({ type: 'session.ended', sessionId, reason: 'expired' });
        await own;
        // Give a misrouted copy the same time to arrive as the delivered one took, several times over.
        await new Promise((resolve) => setTimeout(resolve, 300));
        unsubscribe();

        expect(stray.filter((m) => m.type === 'session.ended' && m.sessionId === sessionId)).toEqual([]);
      } finally {
        await other.cleanup();
      }
    });

    it('reports the connection lost on close and publishes nothing after it', async () => {
      const [, second] = await ctx.racers();
      const bus = present(second?.bus);
      const changes: boolean[] = [];
      bus.onConnectionChange((connected) => changes.push(connected));
      await present(second).close();

      expect(bus.connected).toBe(false);
      await expect(bus.publish({ type: 'revocations.changed' })).rejects.toThrow();
    });
  });
}
