import type { Clock } from '../ops/clock.js';

/**
 * Which user opened each MCP session an in-process server issued (`Mcp-Session-Id`). The SDK's transports
 * keep sessions in memory, so these bindings do too. A session id is only ever honoured for its owner;
 * an id with no binding (another user's, expired, evicted or invented) is refused, never passed through.
 */
export interface SessionOwners {
  /** Records `ownerKey` as the owner of `sessionId` (first binding wins: a session never changes hands). */
  bind(sessionId: string, ownerKey: string): void;
  /** Whether `ownerKey` owns `sessionId`; refreshes its idle timer when it does. */
  owns(sessionId: string, ownerKey: string): boolean;
  release(sessionId: string): void;
  /** The live sessions `ownerKey` owns, oldest use first (a scan of every binding: for diagnostics only). */
  list(ownerKey: string): OwnedSession[];
  size(): number;
}

/** One live binding, as {@link SessionOwners.list} reports it (epoch milliseconds). */
export interface OwnedSession {
  readonly id: string;
  readonly createdAt: number;
  readonly lastUsedAt: number;
  /** The binding is dropped at the earlier of this and {@link absoluteExpiresAt}. */
  readonly idleExpiresAt: number;
  readonly absoluteExpiresAt: number;
}

export interface SessionOwnersOptions {
  readonly clock: Clock;
  /** A binding unused this long is dropped, in milliseconds. */
  readonly idleTimeoutMs: number;
  /** A binding is dropped this long after it was made, however busy, in milliseconds. */
  readonly absoluteLifetimeMs: number;
  /** Most bindings held; the least recently used goes first. */
  readonly maxEntries: number;
}

interface Binding {
  readonly ownerKey: string;
  readonly createdAt: number;
  lastUsedAt: number;
}

export function createSessionOwners(options: SessionOwnersOptions): SessionOwners {
  const { clock } = options;
  // Map iteration order is insertion order; re-inserting on use keeps it least-recently-used first.
  const bindings = new Map<string, Binding>();

  function live(sessionId: string, now: number): Binding | undefined {
    const binding = bindings.get(sessionId);
    if (binding === undefined) return undefined;
    if (
      now - binding.lastUsedAt >= options.idleTimeoutMs ||
      now - binding.createdAt >= options.absoluteLifetimeMs
    ) {
      bindings.delete(sessionId);
      return undefined;
    }
    return binding;
  }

  return {
    bind(sessionId, ownerKey) {
      const now = clock.now();
      if (live(sessionId, now) !== undefined) return;
      bindings.set(sessionId, { ownerKey, createdAt: now, lastUsedAt: now });
      while (bindings.size > options.maxEntries) {
        const oldest = bindings.keys().next();
        if (oldest.done === true) break;
        bindings.delete(oldest.value);
      }
    },
    owns(sessionId, ownerKey) {
      const now = clock.now();
      const binding = live(sessionId, now);
      if (binding === undefined || binding.ownerKey !== ownerKey) return false;
      binding.lastUsedAt = now;
      bindings.delete(sessionId);
      bindings.set(sessionId, binding);
      return true;
    },
    release(sessionId) {
      bindings.delete(sessionId);
    },
    list(ownerKey) {
      const now = clock.now();
      const owned: OwnedSession[] = [];
      for (const [id, candidate] of bindings) {
        if (candidate.ownerKey !== ownerKey || live(id, now) === undefined) continue;
        const absoluteExpiresAt = candidate.createdAt + options.absoluteLifetimeMs;
        owned.push({
          id,
          createdAt: candidate.createdAt,
          lastUsedAt: candidate.lastUsedAt,
          idleExpiresAt: Math.min(candidate.lastUsedAt + options.idleTimeoutMs, absoluteExpiresAt),
          absoluteExpiresAt,
        });
      }
      return owned;
    },
    size: () => bindings.size,
  };
}
