import { GatehouseError } from '../errors/gatehouse-error.js';
import { type Principal, principalKey } from '../identity/principal.js';
import type { Clock } from '../ops/clock.js';

/** What a {@link CredentialBroker} derives for one user (and session). */
export interface BrokeredCredentials {
  /** Variables added to a stdio upstream's environment when its child starts (gateway mode). */
  readonly env?: Readonly<Record<string, string>>;
  /** Values for in-process tools (library mode reads them through {@link CredentialCache.getCredentials}). */
  readonly values?: Readonly<Record<string, unknown>>;
  /** Epoch milliseconds; the credentials are never used at or after this instant. Default: never expire. */
  readonly expiresAt?: number;
}

/**
 * Derives credentials for a verified user, for example cloud credentials obtained with the user's identity
 * (see the README's `AssumeRoleWithWebIdentity` example). `session` is `undefined` for the per-user
 * connection that serves stateless (2026-07-28) requests. A rejection fails the request that needed the
 * credentials (fail closed: an upstream never starts without them).
 */
export type CredentialBroker = (
  principal: Principal,
  session: { readonly id: string } | undefined,
) => Promise<BrokeredCredentials>;

/** Non-secret state of one cached entry, for diagnostics. */
export interface CredentialCacheState {
  readonly cached: boolean;
  /** Epoch milliseconds, when the cached credentials expire. */
  readonly expiresAt?: number;
  /** Names of the environment variables provided (never their values). */
  readonly envNames?: readonly string[];
}

export interface CredentialCache {
  /**
   * The credentials of `principal` for session `sessionId` (or for the user's stateless connection when
   * `undefined`): the cached ones while they have not expired, otherwise fetched from the broker once
   * (concurrent callers share one call). A session id owned by another user is `ERR_SESSION_NOT_FOUND`.
   */
  getCredentials(principal: Principal, sessionId: string | undefined): Promise<BrokeredCredentials>;
  /** Whether credentials with this `expiresAt` must no longer be used. */
  isExpired(credentials: BrokeredCredentials): boolean;
  /** What is cached for this user and session, without calling the broker or revealing any value. */
  describe(principal: Principal, sessionId: string | undefined): CredentialCacheState;
  /** Forgets a session's credentials (called when the session ends). */
  dropSession(sessionId: string): void;
  /** Forgets the credentials of a user's stateless connection (called when that connection closes). */
  dropUser(principal: Principal): void;
  /** Entries held (tests and diagnostics). */
  size(): number;
}

interface Entry {
  readonly owner: string;
  readonly pending: Promise<BrokeredCredentials>;
  value: BrokeredCredentials | undefined;
}

/**
 * Caches a {@link CredentialBroker}'s results per session, and per user for stateless traffic. An entry is
 * never returned at or after its `expiresAt` (the next use refetches) and is dropped when its session ends;
 * failures are never cached. A fetch that finishes after its session ended is not stored.
 *
 * Library mode reads the same cache (`gateway.credentials`) to fill the tool context's `credentials`
 * with `(await getCredentials(principal, sessionId)).values`; gateway mode uses `env` for stdio children.
 *
 * @example
 * const credentials = createCredentialCache({ broker: async (p) => ({ env: { ROLE_USER: p.subject } }), clock });
 * const { env } = await credentials.getCredentials(principal, sessionId);
 */
export function createCredentialCache(options: { broker: CredentialBroker; clock: Clock }): CredentialCache {
  const { broker, clock } = options;
  const entries = new Map<string, Entry>();
  const keyOf = (principal: Principal, sessionId: string | undefined) =>
    sessionId === undefined ? `user:${principalKey(principal)}` : `session:${sessionId}`;
  const isExpired = (credentials: BrokeredCredentials) =>
    credentials.expiresAt !== undefined && clock.now() >= credentials.expiresAt;

  function fetch(key: string, owner: string, principal: Principal, sessionId: string | undefined): Entry {
    const entry: Entry = {
      owner,
      value: undefined,
      pending: broker(principal, sessionId === undefined ? undefined : { id: sessionId }).then(
        (credentials) => {
          // Stored only if the entry is still current: not dropped (session ended) or replaced meanwhile.
          if (entries.get(key) === entry) entry.value = credentials;
          return credentials;
        },
        (error: unknown) => {
          if (entries.get(key) === entry) entries.delete(key);
          throw error;
        },
      ),
    };
    entries.set(key, entry);
    return entry;
  }

  return {
    async getCredentials(principal, sessionId) {
      const key = keyOf(principal, sessionId);
      const owner = principalKey(principal);
      const entry = entries.get(key);
      if (entry !== undefined && entry.owner !== owner) {
        throw new GatehouseError('ERR_SESSION_NOT_FOUND', 'Session not found');
      }
      if (entry === undefined || (entry.value !== undefined && isExpired(entry.value))) {
        return fetch(key, owner, principal, sessionId).pending;
      }
      const credentials = await entry.pending;
      // A broker that hands out already-expired credentials is asked again on the next use, not looped on.
      return credentials;
    },
    isExpired,
    describe(principal, sessionId) {
      const entry = entries.get(keyOf(principal, sessionId));
      const value = entry?.value;
      if (entry === undefined || entry.owner !== principalKey(principal) || value === undefined) {
        return { cached: false };
      }
      if (isExpired(value)) return { cached: false };
      return {
        cached: true,
        ...(value.expiresAt === undefined ? {} : { expiresAt: value.expiresAt }),
        envNames: Object.keys(value.env ?? {}).sort(),
      };
    },
    dropSession(sessionId) {
      entries.delete(`session:${sessionId}`);
    },
    dropUser(principal) {
      entries.delete(`user:${principalKey(principal)}`);
    },
    size: () => entries.size,
  };
}

/**
 * One broker from several: each is asked (concurrently) and their results merged — `env` and `values` by
 * name, a later broker's entry winning, and the earliest `expiresAt`, so the combination is never used
 * past any part's expiry. Any rejection rejects the whole (fail closed).
 *
 * @example
 * const broker = combineCredentialBrokers([cloudBroker, supabaseCredentialBroker(minter, 'SUPABASE_ACCESS_TOKEN')]);
 */
export function combineCredentialBrokers(brokers: readonly CredentialBroker[]): CredentialBroker {
  const [only] = brokers;
  if (brokers.length === 1 && only !== undefined) return only;
  return async (principal, session) => {
    const parts = await Promise.all(brokers.map((broker) => broker(principal, session)));
    const expiries = parts.flatMap((part) => (part.expiresAt === undefined ? [] : [part.expiresAt]));
    return {
      env: Object.assign({}, ...parts.map((part) => part.env ?? {})),
      values: Object.assign({}, ...parts.map((part) => part.values ?? {})),
      ...(expiries.length === 0 ? {} : { expiresAt: Math.min(...expiries) }),
    };
  };
}
