import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { isGatehouseError } from '../../src/errors/gatehouse-error.js';
import type { ClusterBus, ClusterMessage } from '../../src/stores/ports.js';
import { eventually } from './wait.js';

/** Deadlines for what waits on a reconnection: wide, the machine may be loaded. */
export const RECOVERY_MS = 30_000;
/** How fast an operation must fail while the server is down: the connection is gone, nothing may wait on it. */
export const FAIL_FAST_MS = 5_000;

export function isUnavailable(error: unknown): boolean {
  return isGatehouseError(error, 'ERR_STORE_UNAVAILABLE');
}

/** Publishes a fresh `session.ended` on `bus` and resolves once `bus` itself delivers it back. */
export async function busRoundTrip(bus: ClusterBus): Promise<void> {
  const sessionId = `sess-${randomUUID()}`;
  const received: ClusterMessage[] = [];
  const unsubscribe = bus.subscribe((message) => received.push(message));
  try {
    await bus.publish({ type: 'session.ended', sessionId, reason: 'expired' });
    await eventually(
      () => received.some((m) => m.type === 'session.ended' && m.sessionId === sessionId),
      RECOVERY_MS,
    );
  } finally {
    unsubscribe();
  }
}

/** Runs `operation`, expecting it to fail with `ERR_STORE_UNAVAILABLE` within {@link FAIL_FAST_MS}. */
export async function failsFast(operation: () => Promise<unknown>): Promise<void> {
  const started = Date.now();
  const failure = await operation().then(
    () => new Error('the operation succeeded while the server was down'),
    (error: unknown) => error,
  );
  expect(isUnavailable(failure), String(failure)).toBe(true);
  expect(Date.now() - started).toBeLessThan(FAIL_FAST_MS);
}

/** Resolves once `operation` succeeds, retrying while it fails with `ERR_STORE_UNAVAILABLE`. */
export async function untilAvailable(operation: () => Promise<unknown>): Promise<void> {
  await eventually(async () => {
    try {
      await operation();
      return true;
    } catch (error) {
      if (isUnavailable(error)) return false;
      throw error;
    }
  }, RECOVERY_MS);
}
