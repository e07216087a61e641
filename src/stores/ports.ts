/**
 * Store ports: one interface per record type. Every adapter (memory, SQLite; Postgres and Redis later)
 * passes the same contract suite in `test/contract/`. Operations are atomic: no adapter may implement
 * one with a read followed by a write across an await.
 *
 * Times are epoch milliseconds from the injected clock; adapters never read the wall clock.
 */

/** How the client reached Gatehouse; each kind is bound to a principal the same way. */
export type SessionKind = 'streamable-http' | 'websocket' | 'legacy-sse';

export interface SessionRecord {
  /** Cryptographically random, URL-safe; used as `Mcp-Session-Id`. */
  readonly id: string;
  /** `principalKey()` of the user who created the session; every later request must match it. */
  readonly principalKey: string;
  readonly kind: SessionKind;
  readonly createdAt: number;
  /** Last request seen; the idle deadline is `lastSeenAt + idleTimeout`. */
  readonly lastSeenAt: number;
  /** The session ends at the earlier of `idleExpiresAt` and `absoluteExpiresAt`. */
  readonly idleExpiresAt: number;
  readonly absoluteExpiresAt: number;
  /** Optimistic-concurrency version; starts at 1 and grows by one on every `update`. */
  readonly version: number;
  /**
   * Non-secret state the gateway needs to re-establish the session after a restart (for example the
   * client's `initialize` parameters and the negotiated protocol version). Never used for authentication.
   */
  readonly data: Readonly<Record<string, unknown>>;
}

export interface CreateSessionResult {
  readonly created: boolean;
  /** Live sessions the principal held before this call (after the call, if created, one more). */
  readonly activeCount: number;
}

export interface SessionStore {
  /**
   * Inserts `record` only if its principal holds fewer than `maxPerPrincipal` live sessions at `now`
   * (live: both deadlines after `now`). Check and insert are one atomic step, so N concurrent creates
   * against a cap of K admit exactly K. Throws if the id already exists.
   */
  create(record: SessionRecord, maxPerPrincipal: number, now: number): Promise<CreateSessionResult>;
  /** The record, or `undefined` when absent or expired at `now`. */
  get(id: string, now: number): Promise<SessionRecord | undefined>;
  /**
   * Records activity: sets `lastSeenAt = now` and `idleExpiresAt = min(now + idleTimeoutMs, absoluteExpiresAt)`.
   * Does not bump `version` (activity is not a state change). Returns the updated record, or `undefined`
   * when the session is absent or already expired at `now`.
   */
  touch(id: string, now: number, idleTimeoutMs: number): Promise<SessionRecord | undefined>;
  /**
   * Compare-and-swap: replaces `data` only if the stored version equals `expectedVersion`, and
   * increments the version. Returns the new record, or `undefined` when the version did not match or the
   * session is gone (the caller re-reads and retries).
   */
  update(
    id: string,
    expectedVersion: number,
    data: Readonly<Record<string, unknown>>,
  ): Promise<SessionRecord | undefined>;
  /** Deletes the session; `true` only for the one caller that actually removed it. */
  delete(id: string): Promise<boolean>;
  /** Live sessions of one principal at `now`, oldest first. */
  listByPrincipal(principalKey: string, now: number): Promise<SessionRecord[]>;
  /**
   * Removes up to `limit` sessions expired at `now` and returns exactly the removed ones, so the
   * caller can reap their upstreams. Concurrent sweepers never return the same session twice.
   */
  deleteExpired(now: number, limit: number): Promise<SessionRecord[]>;
}

/** All ports of one backend. Grows with users, clients, grants, tokens and audit. */
export interface Stores {
  readonly sessions: SessionStore;
  /** Which adapter this is (`memory`, `sqlite`, …), for logs and diagnostics. */
  readonly kind: string;
  /** Releases connections and files. */
  close(): Promise<void>;
}
