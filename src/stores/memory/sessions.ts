import { GatehouseError } from '../../errors/gatehouse-error.js';
import { afterPage } from '../list-page.js';
import type { CreateSessionResult, SessionRecord, SessionStore } from '../ports.js';
import { type SessionFields, sessionFields } from '../session-fields.js';
import { sweepLimit } from '../sweep-limit.js';
import { compareBinary, type MemoryPort } from './copy.js';

/**
 * A stored session. `data` is kept as JSON text so the memory adapter has the same value semantics as the
 * SQL and Redis adapters (what goes in is what a JSON round trip gives back) and no caller can reach into
 * a stored object through a reference it kept or was given.
 */
type StoredSession = SessionFields;

function toRecord(stored: StoredSession): SessionRecord {
  return { ...stored, data: JSON.parse(stored.data) as Record<string, unknown> };
}

function isLive(stored: StoredSession, now: number): boolean {
  return stored.idleExpiresAt > now && stored.absoluteExpiresAt > now;
}

/** The order of the SQL adapters' `ORDER BY created_at, id`. */
function byCreatedAtThenId(a: StoredSession, b: StoredSession): number {
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt;
  return compareBinary(a.id, b.id);
}

/** Least recently used first: the order in which sessions are evicted. */
function byLastSeenAt(a: StoredSession, b: StoredSession): number {
  if (a.lastSeenAt !== b.lastSeenAt) return a.lastSeenAt - b.lastSeenAt;
  return byCreatedAtThenId(a, b);
}

/**
 * Every method is an `async` function whose body never awaits, so each one runs to completion before any
 * other store call starts: check-then-write is atomic on the single JS thread, which is the same guarantee
 * the SQL adapters get from transactions.
 */
export function createMemorySessionStore(): MemoryPort<SessionStore> {
  const sessions = new Map<string, StoredSession>();
  const idsByPrincipal = new Map<string, Set<string>>();

  const remove = (stored: StoredSession): void => {
    sessions.delete(stored.id);
    const ids = idsByPrincipal.get(stored.principalKey);
    if (ids === undefined) return;
    ids.delete(stored.id);
    if (ids.size === 0) idsByPrincipal.delete(stored.principalKey);
  };

  const liveOf = (principalKey: string, now: number): StoredSession[] => {
    const live: StoredSession[] = [];
    for (const id of idsByPrincipal.get(principalKey) ?? []) {
      const stored = sessions.get(id);
      if (stored !== undefined && isLive(stored, now)) live.push(stored);
    }
    return live;
  };

  const store: SessionStore = {
    async create(record, limit, now): Promise<CreateSessionResult> {
      if (sessions.has(record.id)) {
        throw new GatehouseError('ERR_SESSION_CONFLICT', 'A session with this id already exists.');
      }
      const live = liveOf(record.principalKey, now);
      const activeCount = live.length;
      let evicted: StoredSession[] = [];
      if (activeCount >= limit.max) {
        const needed = activeCount - limit.max + 1;
        const kinds = limit.evictKinds ?? [];
        evicted = live
          .filter((stored) => kinds.includes(stored.kind))
          .sort(byLastSeenAt)
          .slice(0, needed);
        if (evicted.length < needed) return { created: false, activeCount };
        for (const stored of evicted) remove(stored);
      }
      const stored = sessionFields(record);
      sessions.set(stored.id, stored);
      const ids = idsByPrincipal.get(stored.principalKey);
      if (ids === undefined) idsByPrincipal.set(stored.principalKey, new Set([stored.id]));
      else ids.add(stored.id);
      return { created: true, activeCount, evicted: evicted.map(toRecord) };
    },

    async get(id, now) {
      const stored = sessions.get(id);
      return stored !== undefined && isLive(stored, now) ? toRecord(stored) : undefined;
    },

    async touch(id, principalKey, now, idleTimeoutMs) {
      const stored = sessions.get(id);
      if (stored === undefined || stored.principalKey !== principalKey || !isLive(stored, now)) {
        return undefined;
      }
      const idle = idleTimeoutMs ?? stored.idleTimeoutMs;
      const touched: StoredSession = {
        ...stored,
        lastSeenAt: now,
        idleTimeoutMs: idle,
        idleExpiresAt: Math.min(now + idle, stored.absoluteExpiresAt),
      };
      sessions.set(id, touched);
      return toRecord(touched);
    },

    async update(id, expectedVersion, data) {
      const stored = sessions.get(id);
      if (stored === undefined || stored.version !== expectedVersion) return undefined;
      const updated: StoredSession = { ...stored, version: stored.version + 1, data: JSON.stringify(data) };
      sessions.set(id, updated);
      return toRecord(updated);
    },

    async delete(id) {
      const stored = sessions.get(id);
      if (stored === undefined) return false;
      remove(stored);
      return true;
    },

    async deleteOwned(id, principalKey) {
      const stored = sessions.get(id);
      if (stored === undefined || stored.principalKey !== principalKey) return undefined;
      remove(stored);
      return toRecord(stored);
    },

    async deleteByPrincipal(principalKey) {
      const removed: StoredSession[] = [];
      for (const id of idsByPrincipal.get(principalKey) ?? []) {
        const stored = sessions.get(id);
        if (stored !== undefined) removed.push(stored);
      }
      for (const stored of removed) remove(stored);
      return removed.sort(byCreatedAtThenId).map(toRecord);
    },

    async listByPrincipal(principalKey, now) {
      return liveOf(principalKey, now).sort(byCreatedAtThenId).map(toRecord);
    },

    async list(now, page) {
      return afterPage(
        [...sessions.values()].filter((stored) => isLive(stored, now)),
        page,
        (stored) => stored.id,
      ).map(toRecord);
    },

    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      const removed: SessionRecord[] = [];
      for (const stored of sessions.values()) {
        if (removed.length >= max) break;
        if (isLive(stored, now)) continue;
        remove(stored);
        removed.push(toRecord(stored));
      }
      return removed;
    },
  };

  return {
    store,
    clear() {
      sessions.clear();
      idsByPrincipal.clear();
    },
  };
}
