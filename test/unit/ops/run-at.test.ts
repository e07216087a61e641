import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMER_MS, runAt, systemClock } from '../../../src/ops/clock.js';

describe('runAt', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires at the instant, re-arming rather than firing early past the timer limit', () => {
    vi.useFakeTimers();
    const fire = vi.fn();
    runAt(Date.now() + MAX_TIMER_MS + 1_000, systemClock, fire);
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(fire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(999);
    expect(fire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fire).toHaveBeenCalledTimes(1);
  });

  it('fires at once for an instant already past, and never after cancel', () => {
    vi.useFakeTimers();
    const past = vi.fn();
    runAt(Date.now() - 5, systemClock, past);
    vi.advanceTimersByTime(0);
    expect(past).toHaveBeenCalledTimes(1);
    const cancelled = vi.fn();
    const cancel = runAt(Date.now() + MAX_TIMER_MS + 10, systemClock, cancelled);
    vi.advanceTimersByTime(MAX_TIMER_MS);
    cancel();
    vi.advanceTimersByTime(100);
    expect(cancelled).not.toHaveBeenCalled();
  });
});
