import type { Principal } from '../identity/principal.js';
import type { SessionEndReason } from '../ops/events.js';
import type { SessionManager } from '../sessions/manager.js';

/** A session that holds an upstream on this instance (a 2025-era relay, a WebSocket, a legacy SSE stream). */
export interface LiveEntry {
  readonly sessionId: string;
  /** The session's user, as last verified. */
  readonly principal: Principal;
  /** The session ended (swept, evicted, revoked, deleted elsewhere): release the upstream, close streams. */
  sessionEnded(reason: SessionEndReason): void;
}

/**
 * Every session that holds an upstream on this instance, by id: one place where "the session ended"
 * becomes "its upstream stops and its streams close", for every transport, and where revoked access ends
 * the live sessions it still holds open.
 */
export interface LiveRegistry {
  add(entry: LiveEntry): void;
  remove(entry: LiveEntry): void;
  get(sessionId: string): LiveEntry | undefined;
  /** Ends (through the session manager) every live session whose user `isRevoked` says is revoked. */
  endRevoked(isRevoked: (principal: Principal) => boolean): Promise<number>;
  /**
   * Releases the upstream of every entry whose session is no longer live in the store: expired and swept
   * (by any instance), or ended by another instance while this one missed the cluster bus. An entry whose
   * check fails (the store is down) is kept: an outage ends nobody's session. Returns how many were released.
   */
  reconcile(): Promise<number>;
  readonly size: number;
}

export function createLiveRegistry(sessions: SessionManager): LiveRegistry {
  const entries = new Map<string, LiveEntry>();
  sessions.onEnded((id, reason) => {
    const entry = entries.get(id);
    if (entry === undefined) return;
    entries.delete(id);
    entry.sessionEnded(reason);
  });
  return {
    add(entry) {
      entries.set(entry.sessionId, entry);
    },
    remove(entry) {
      if (entries.get(entry.sessionId) === entry) entries.delete(entry.sessionId);
    },
    get: (sessionId) => entries.get(sessionId),
    async endRevoked(isRevoked) {
      const revoked = [...entries.values()].filter((entry) => isRevoked(entry.principal));
      await Promise.all(
        revoked.map((entry) =>
          sessions.end(entry.sessionId, entry.principal, 'revoked').catch(() => {
            // Already gone from the store (the command that revoked access ended it there): only the
            // upstream held here is left to release.
            if (entries.get(entry.sessionId) !== entry) return;
            entries.delete(entry.sessionId);
            entry.sessionEnded('revoked');
          }),
        ),
      );
      return revoked.length;
    },
    async reconcile() {
      const checked = await Promise.all(
        [...entries.values()].map(async (entry) => ({
          entry,
          live: await sessions.isLive(entry.sessionId).catch(() => true),
        })),
      );
      let released = 0;
      for (const { entry, live } of checked) {
        if (live || entries.get(entry.sessionId) !== entry) continue;
        entries.delete(entry.sessionId);
        entry.sessionEnded('expired');
        released++;
      }
      return released;
    },
    get size() {
      return entries.size;
    },
  };
}
