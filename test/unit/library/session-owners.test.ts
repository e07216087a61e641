import { describe, expect, it } from 'vitest';
import { createSessionOwners } from '../../../src/library/session-owners.js';
import { createManualClock } from '../../../src/ops/clock.js';

function owners(maxEntries = 10) {
  const clock = createManualClock();
  return {
    clock,
    owners: createSessionOwners({ clock, idleTimeoutMs: 1_000, absoluteLifetimeMs: 5_000, maxEntries }),
  };
}

describe('session owners', () => {
  it('honours a session id only for the user who opened it', () => {
    const { owners: o } = owners();
    o.bind('s1', 'iss#alice');
    expect(o.owns('s1', 'iss#alice')).toBe(true);
    expect(o.owns('s1', 'iss#bob')).toBe(false);
    expect(o.owns('unknown', 'iss#alice')).toBe(false);
  });

  it('never hands a bound session to another user', () => {
    const { owners: o } = owners();
    o.bind('s1', 'iss#alice');
    o.bind('s1', 'iss#bob');
    expect(o.owns('s1', 'iss#bob')).toBe(false);
    expect(o.owns('s1', 'iss#alice')).toBe(true);
  });

  it('drops a binding on idle timeout and on absolute lifetime', () => {
    const { owners: o, clock } = owners();
    o.bind('idle', 'iss#alice');
    clock.advance(1_000);
    expect(o.owns('idle', 'iss#alice')).toBe(false);
    o.bind('busy', 'iss#alice');
    for (let i = 0; i < 5; i++) {
      clock.advance(999);
      expect(o.owns('busy', 'iss#alice')).toBe(true);
    }
    clock.advance(5);
    expect(o.owns('busy', 'iss#alice')).toBe(false);
  });

  it('evicts the least recently used binding past maxEntries, and releases on request', () => {
    const { owners: o } = owners(2);
    o.bind('a', 'iss#alice');
    o.bind('b', 'iss#alice');
    expect(o.owns('a', 'iss#alice')).toBe(true);
    o.bind('c', 'iss#alice');
    expect(o.owns('b', 'iss#alice')).toBe(false);
    expect(o.owns('a', 'iss#alice')).toBe(true);
    o.release('a');
    expect(o.owns('a', 'iss#alice')).toBe(false);
    expect(o.size()).toBe(1);
  });
});
