/** The one clock. Everything that reads time takes a `Clock`, so tests control time and never sleep. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to; for tests. */
export interface ManualClock extends Clock {
  advance(durationMs: number): void;
  set(epochMs: number): void;
}

export function createManualClock(startMs = Date.UTC(2026, 0, 1)): ManualClock {
  let current = startMs;
  return {
    now: () => current,
    advance: (durationMs) => {
      current += durationMs;
    },
    set: (epochMs) => {
      current = epochMs;
    },
  };
}

export function epochSeconds(clock: Clock): number {
  return Math.floor(clock.now() / 1000);
}

/** Node timers overflow beyond 2^31-1 ms (about 24.8 days); longer waits are re-armed. */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * Calls `fire` once `clock` has reached `at` (epoch ms). A wait beyond {@link MAX_TIMER_MS} is re-armed
 * rather than cut short, and the timer never keeps the process alive. Returns the cancel function.
 */
export function runAt(at: number, clock: Clock, fire: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const remainingMs = at - clock.now();
    timer = setTimeout(
      remainingMs > MAX_TIMER_MS ? arm : fire,
      Math.min(Math.max(0, remainingMs), MAX_TIMER_MS),
    );
    timer.unref();
  };
  arm();
  return () => clearTimeout(timer);
}
