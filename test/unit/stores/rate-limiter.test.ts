import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { memoryRateLimiter } from '../../../src/stores/rate-limiter.js';

describe('memoryRateLimiter', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: Date.UTC(2026, 0, 1) });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('allows `points` events per key per window, then refuses with the seconds left in the window', async () => {
    const limiter = memoryRateLimiter({ points: 3, durationSeconds: 60, keyPrefix: 'test' });
    for (let i = 0; i < 3; i++) expect(await limiter.consume('alice')).toEqual({ allowed: true });
    vi.advanceTimersByTime(20_000);
    expect(await limiter.consume('alice')).toEqual({ allowed: false, retryAfterSeconds: 40 });
  });

  it('counts each key on its own', async () => {
    const limiter = memoryRateLimiter({ points: 1, durationSeconds: 60, keyPrefix: 'test' });
    expect(await limiter.consume('alice')).toEqual({ allowed: true });
    expect(await limiter.consume('bob')).toEqual({ allowed: true });
    expect((await limiter.consume('alice')).allowed).toBe(false);
  });

  it('allows again once the window has passed', async () => {
    const limiter = memoryRateLimiter({ points: 1, durationSeconds: 10, keyPrefix: 'test' });
    expect(await limiter.consume('k')).toEqual({ allowed: true });
    expect((await limiter.consume('k')).allowed).toBe(false);
    vi.advanceTimersByTime(10_001);
    expect(await limiter.consume('k')).toEqual({ allowed: true });
  });

  it('keeps separate limiters apart even on the same key', async () => {
    const perUser = memoryRateLimiter({ points: 1, durationSeconds: 60, keyPrefix: 'user' });
    const perIp = memoryRateLimiter({ points: 1, durationSeconds: 60, keyPrefix: 'ip' });
    expect(await perUser.consume('x')).toEqual({ allowed: true });
    expect(await perIp.consume('x')).toEqual({ allowed: true });
  });

  it('never answers a retry of less than one second', async () => {
    const limiter = memoryRateLimiter({ points: 1, durationSeconds: 1, keyPrefix: 'test' });
    await limiter.consume('k');
    vi.advanceTimersByTime(999);
    expect(await limiter.consume('k')).toEqual({ allowed: false, retryAfterSeconds: 1 });
  });

  it('refuses options that would make it meaningless', () => {
    expect(() => memoryRateLimiter({ points: 0, durationSeconds: 60, keyPrefix: 'test' })).toThrow(
      RangeError,
    );
    expect(() => memoryRateLimiter({ points: 1, durationSeconds: 0.5, keyPrefix: 'test' })).toThrow(
      RangeError,
    );
    expect(() => memoryRateLimiter({ points: 1, durationSeconds: 60, keyPrefix: '' })).toThrow(RangeError);
  });
});
