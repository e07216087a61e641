import type { Clock } from '../ops/clock.js';
import type { Logger } from '../ops/logger.js';
import type { ClusterBus, RevocationRecord, RevocationStore } from '../stores/ports.js';

/** The claim that names the grant (the user's authorization of one client) an access token belongs to. */
export const GRANT_CLAIM = 'sid';

/**
 * Revoked access tokens, consulted on every request that carries a token Gatehouse issued. The set
 * lives in memory (a lookup is two map reads) and in the store. Before each check the guard calls
 * {@link RevocationList.sync}.
 *
 * - With a cluster bus (PostgreSQL, Redis) that is connected, and a load completed since it last
 *   connected, other processes' revocations are pushed (`revocations.changed`) and `sync` costs nothing.
 * - Otherwise (no bus, or the bus is reconnecting) `sync` reads the store's watermark — one cheap query —
 *   and loads new entries only when it moved, so a revocation written by another process on the same
 *   store (a CLI command, another instance) is refused from the moment that write returns.
 *
 * A slower poll stays as the last fallback.
 */
export interface RevocationList {
  /** Records the revocation in the store and in memory; returns once both hold it. */
  revoke(record: RevocationRecord): Promise<void>;
  /**
   * Adds an entry the store already holds (written atomically with the change that caused it, such as a
   * grant's revocation) to the in-memory set, tells the listeners and announces it to the other instances.
   */
  remember(record: RevocationRecord): Promise<void>;
  /** Whether a token with these claims is revoked (by its grant or its own `jti`). */
  isRevoked(claims: Readonly<Record<string, unknown>>): boolean;
  /** Loads what other processes added, when the store's watermark says there is something. */
  sync(): Promise<void>;
  /** Loads entries added since the last load, whatever the watermark says. */
  refresh(): Promise<void>;
  /** Calls `listener` with every entry this instance learns of (its own and other processes'), once each. */
  onRevoked(listener: (record: RevocationRecord) => void): void;
  /** Starts polling the store every `intervalMs` (the fallback behind `sync`) and listening to the bus. */
  start(intervalMs: number): void;
  stop(): void;
}

/**
 * Tells every instance on the store that revocation entries were added (a no-op without a bus). For
 * processes that write revocations without a list of their own, such as the CLI.
 */
export async function announceRevocations(bus: ClusterBus | undefined): Promise<void> {
  await bus?.publish({ type: 'revocations.changed' });
}

export function createRevocationList(options: {
  store: RevocationStore;
  clock: Clock;
  logger: Logger;
  /** The shared store's cluster bus, when it has one. */
  bus?: ClusterBus | undefined;
}): RevocationList {
  const { store, clock, logger, bus } = options;
  const entries = new Map<string, number>();
  const listeners: Array<(record: RevocationRecord) => void> = [];
  // Entries are polled from a little before the last poll: a slow writer's row must not be skipped.
  const OVERLAP_MS = 60_000;
  let loadedUntil = 0;
  /** The highest store watermark a completed load is known to cover. */
  let covered = Number.NEGATIVE_INFINITY;
  let loading: { readonly covers: number; readonly done: Promise<void> } | undefined;
  let timer: NodeJS.Timeout | undefined;
  /** Revocations reach this instance by the bus: connected, and loaded since it (re)connected. */
  let pushed = false;
  let stopListening: Array<() => void> = [];

  const keyOf = (kind: RevocationRecord['kind'], id: string) => `${kind}:${id}`;
  const learn = (record: RevocationRecord): void => {
    const key = keyOf(record.kind, record.id);
    const known = entries.get(key);
    entries.set(key, Math.max(known ?? 0, record.expiresAt));
    if (known !== undefined || record.expiresAt <= clock.now()) return;
    for (const listener of listeners) {
      try {
        listener(record);
      } catch (error) {
        logger.error({ err: error }, 'revocation listener failed');
      }
    }
  };
  const active = (key: string): boolean => {
    const expiresAt = entries.get(key);
    if (expiresAt === undefined) return false;
    if (expiresAt <= clock.now()) {
      entries.delete(key);
      return false;
    }
    return true;
  };

  async function refresh(): Promise<void> {
    const now = clock.now();
    const since = Math.max(0, loadedUntil - OVERLAP_MS);
    for (const record of await store.listSince(since, now)) learn(record);
    loadedUntil = now;
  }

  /**
   * A load that starts after `watermark` was read sees every entry written before it. A load already in
   * flight may have read the store before such an entry was written, so it only counts when it was begun
   * for a watermark at least as high; otherwise a new load is queued behind it.
   */
  function loadCovering(watermark: number): Promise<void> {
    if (loading !== undefined && loading.covers >= watermark) return loading.done;
    const previous = loading?.done;
    const done = (async () => {
      await previous?.catch(() => undefined);
      await refresh();
      covered = Math.max(covered, watermark);
    })();
    const current = { covers: watermark, done };
    loading = current;
    void done
      .finally(() => {
        if (loading === current) loading = undefined;
      })
      .catch(() => undefined);
    return done;
  }

  /** Loads what the store's watermark says is new; never throws (logs), the poll retries. */
  function catchUp(): Promise<void> {
    return store
      .watermark()
      .then((watermark) => (watermark > covered ? loadCovering(watermark) : undefined))
      .catch((error: unknown) => logger.warn({ err: error }, 'revocation reload failed'));
  }

  async function announce(): Promise<void> {
    await announceRevocations(bus).catch((error: unknown) => {
      // Stored already; the others find it by their watermark check or poll.
      logger.warn({ err: error }, 'revocation not announced on the cluster bus');
    });
  }

  function listen(cluster: ClusterBus): void {
    stopListening = [
      cluster.subscribe((message) => {
        if (message.type === 'revocations.changed') void catchUp();
      }),
      cluster.onConnectionChange((connected) => {
        pushed = false;
        // Messages may have been missed while disconnected: load, then trust the bus again.
        if (connected) void catchUp().then(() => (pushed = cluster.connected));
      }),
    ];
    if (cluster.connected) void catchUp().then(() => (pushed = cluster.connected));
  }

  const list: RevocationList = {
    async revoke(record) {
      await store.add(record);
      learn(record);
      await announce();
    },
    async remember(record) {
      learn(record);
      await announce();
    },
    isRevoked(claims) {
      const grant = claims[GRANT_CLAIM];
      const jti = claims.jti;
      return (
        (typeof grant === 'string' && active(keyOf('grant', grant))) ||
        (typeof jti === 'string' && active(keyOf('jti', jti)))
      );
    },
    async sync() {
      if (pushed) return;
      const watermark = await store.watermark();
      if (watermark > covered) await loadCovering(watermark);
    },
    refresh,
    onRevoked(listener) {
      listeners.push(listener);
    },
    start(intervalMs) {
      if (timer !== undefined) return;
      if (bus !== undefined) listen(bus);
      timer = setInterval(() => {
        refresh().catch((error: unknown) => logger.warn({ err: error }, 'revocation poll failed'));
      }, intervalMs);
      timer.unref();
    },
    stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      for (const unsubscribe of stopListening) unsubscribe();
      stopListening = [];
      pushed = false;
    },
  };
  return list;
}
