/**
 * Store ports: one interface per record type. Every adapter (memory, SQLite, PostgreSQL, Redis)
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
  /** Last request seen; the idle deadline is `lastSeenAt + idleTimeoutMs` (capped by `absoluteExpiresAt`). */
  readonly lastSeenAt: number;
  /**
   * The idle timeout of this session, in milliseconds. A session still waiting for its first request after
   * `initialize` gets a short one, so an abandoned handshake frees its slot under the cap quickly; `touch`
   * with a timeout replaces it once the session is established.
   */
  readonly idleTimeoutMs: number;
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

/** One page of an operator's listing, in the listing's order (`createdAt`, then the record's id). */
export interface ListPage {
  /** At most this many records; a positive integer. */
  readonly limit: number;
  /** Start strictly after this record of the previous page. */
  readonly after?: { readonly createdAt: number; readonly id: string };
}

/** How many live sessions one principal may hold, and what may make way for a new one. */
export interface SessionLimit {
  /** The most live sessions one principal may hold, the new one included. */
  readonly max: number;
  /**
   * Kinds that may be evicted to make room, least recently used first (smallest `lastSeenAt`, ties by
   * `createdAt` then `id`). Absent or empty: a principal at the cap is refused.
   */
  readonly evictKinds?: readonly SessionKind[];
}

export type CreateSessionResult =
  | {
      readonly created: true;
      /** Live sessions the principal held before this call, evicted ones included. */
      readonly activeCount: number;
      /** The sessions removed to make room, in eviction order; the caller ends their upstreams. */
      readonly evicted: readonly SessionRecord[];
    }
  | {
      readonly created: false;
      /** Live sessions the principal holds (none was evicted). */
      readonly activeCount: number;
    };

export interface SessionStore {
  /**
   * Inserts `record` if its principal holds fewer than `limit.max` live sessions at `now` (live: both
   * deadlines after `now`). At the cap, when evicting the least recently used live sessions of
   * `limit.evictKinds` can bring the principal below it, those are deleted and returned and the record is
   * inserted; otherwise nothing changes and the result is `created: false`. Count, eviction and insert are
   * one atomic step, so N concurrent creates against a cap of K leave at most K live sessions and each
   * evicted session is returned to exactly one caller (which alone reaps its upstream). Throws
   * `ERR_SESSION_CONFLICT` if the id already exists, live or not.
   */
  create(record: SessionRecord, limit: SessionLimit, now: number): Promise<CreateSessionResult>;
  /** The record, or `undefined` when absent or expired at `now`. */
  get(id: string, now: number): Promise<SessionRecord | undefined>;
  /**
   * Records activity by the session's owner: sets `lastSeenAt = now` and
   * `idleExpiresAt = min(now + idle, absoluteExpiresAt)`, where `idle` is `idleTimeoutMs` when given (and
   * then also stored as the session's `idleTimeoutMs`: this is how a pending session becomes established)
   * or else the session's own `idleTimeoutMs`. Only when the session exists, is live at `now` and belongs
   * to `principalKey`: a request carrying another user's session id must never keep the victim's session
   * alive. Returns the updated record, or `undefined` when absent, expired or another principal's — the
   * three are indistinguishable, so a probe learns nothing about other users' ids. Does not bump
   * `version` (activity is not a state change).
   */
  touch(
    id: string,
    principalKey: string,
    now: number,
    idleTimeoutMs?: number,
  ): Promise<SessionRecord | undefined>;
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
  /** Deletes the session whoever owns it; `true` only for the one caller that actually removed it. */
  delete(id: string): Promise<boolean>;
  /**
   * Deletes the session only if it belongs to `principalKey`, in one step (a get-then-delete could remove a
   * session another request re-created meanwhile, and a foreign id must leave the victim's session alone).
   * Returns the deleted record, expired or not (its upstream still needs reaping), to exactly one of
   * concurrent callers; `undefined` when absent or another principal's.
   */
  deleteOwned(id: string, principalKey: string): Promise<SessionRecord | undefined>;
  /**
   * Deletes every session of the principal, live or expired (signing a user out everywhere, disabling an
   * account), and returns the deleted records, oldest first, so the caller reaps their upstreams. A session
   * is returned to at most one of concurrent callers.
   */
  deleteByPrincipal(principalKey: string): Promise<SessionRecord[]>;
  /** Live sessions of one principal at `now`, oldest first. */
  listByPrincipal(principalKey: string, now: number): Promise<SessionRecord[]>;
  /**
   * Live sessions of every principal at `now` (the operator's view), oldest first by `createdAt` then `id`;
   * at most `page.limit` of them, starting strictly after `page.after` (the last record of the previous
   * page) when given.
   */
  list(now: number, page: ListPage): Promise<SessionRecord[]>;
  /**
   * Removes up to `limit` sessions expired at `now` and returns exactly the removed ones, so the
   * caller can reap their upstreams. Concurrent sweepers never return the same session twice.
   */
  deleteExpired(now: number, limit: number): Promise<SessionRecord[]>;
}

/* ----------------------------------------------------------------------------------------------
 * Authorization server records. Codes, refresh tokens and client secrets are stored only as
 * `tokenHash()` values; upstream tokens and grace responses only as ciphertext.
 * -------------------------------------------------------------------------------------------- */

/** Who a grant, code or login session belongs to; enough to rebuild the access token's claims. */
export interface PrincipalSnapshot {
  readonly subject: string;
  /** Where the identity came from: `local` or the federated provider's name. */
  readonly idp: string;
  readonly email?: string;
  readonly name?: string;
  /** Extra claims copied into access tokens (organization, roles); never secrets. */
  readonly claims?: Readonly<Record<string, unknown>>;
}

/** A local account. */
export interface UserRecord {
  /** Stable, random, never reused; the `sub` of the user's tokens. */
  readonly id: string;
  /** Unique login name, already normalised (NFKC, lower case) by the caller. */
  readonly username: string;
  readonly email?: string;
  readonly name?: string;
  /** Self-describing password hash (algorithm and parameters included). */
  readonly passwordHash: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** When the account was disabled; absent while it is enabled. A disabled user cannot sign in. */
  readonly disabledAt?: number;
  /**
   * When the credentials last changed: the creation time, then every password change (never a rehash).
   * Sign-ins, codes and grants authenticated before it no longer count, so a password reset locks out
   * whoever knew the old one.
   */
  readonly credentialsChangedAt: number;
  /**
   * Roles Gatehouse itself acts on (`admin`: may use the admin API and console), sorted and distinct; empty
   * for most users. Adapters return `[]` for users stored before roles existed.
   */
  readonly roles: readonly string[];
}

export interface UserStore {
  /** Inserts the user; `false` (and no change) when the username or id is taken. */
  create(user: UserRecord): Promise<boolean>;
  get(id: string): Promise<UserRecord | undefined>;
  findByUsername(username: string): Promise<UserRecord | undefined>;
  /** Every user, ordered by username. */
  list(): Promise<UserRecord[]>;
  /**
   * A password change: replaces the hash and sets `updatedAt` and `credentialsChangedAt` to `now`, so
   * everything authenticated with the old password stops counting. `false` when the user does not exist
   * or, when `expectedHash` is given, when the stored hash is no longer `expectedHash` (compare-and-swap).
   */
  setPassword(id: string, passwordHash: string, now: number, expectedHash?: string): Promise<boolean>;
  /**
   * The same password hashed again (stronger parameters after a sign-in): replaces the hash and sets
   * `updatedAt`, but keeps `credentialsChangedAt`, since the credentials did not change and nothing
   * authenticated with them may be invalidated. Compare-and-swap on `expectedHash`, so a rehash never
   * overwrites a password changed meanwhile; `false` when it was, or when the user does not exist.
   */
  rehash(id: string, passwordHash: string, now: number, expectedHash: string): Promise<boolean>;
  /**
   * Disables (`disabledAt = now`, kept from the first call while the account stays disabled) or enables
   * (`disabledAt` absent) the account; `updatedAt` moves only when the state changes. Returns the
   * resulting record, or `undefined` when the user does not exist. Ending the user's sessions and grants
   * is the caller's job.
   */
  setDisabled(id: string, disabled: boolean, now: number): Promise<UserRecord | undefined>;
  /**
   * Replaces the user's roles (stored sorted and distinct) and sets `updatedAt`; returns the resulting record,
   * or `undefined` when the user does not exist.
   */
  setRoles(id: string, roles: readonly string[], now: number): Promise<UserRecord | undefined>;
  /**
   * "Sign out everywhere" without a new password: sets `credentialsChangedAt` (and `updatedAt`) to `now`,
   * so every browser sign-in, code and grant authenticated before it stops counting. Returns the resulting
   * record, or `undefined` when the user does not exist.
   */
  signOut(id: string, now: number): Promise<UserRecord | undefined>;
  delete(id: string): Promise<boolean>;
}

export type TokenEndpointAuthMethod = 'none' | 'client_secret_basic' | 'client_secret_post';

/** A registered OAuth client (dynamic registration; pre-registered and CIMD clients never reach the store). */
export interface ClientRecord {
  readonly clientId: string;
  /** `tokenHash()` of the client secret, for confidential clients. */
  readonly secretHash?: string;
  readonly tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  readonly redirectUris: readonly string[];
  readonly grantTypes: readonly string[];
  readonly responseTypes: readonly string[];
  readonly applicationType: 'web' | 'native';
  readonly clientName?: string;
  readonly clientUri?: string;
  readonly logoUri?: string;
  /** Space-separated scopes the client may request, when it registered a limit. */
  readonly scope?: string;
  /** The validated RFC 7591 metadata as registered, returned again on read. */
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly createdAt: number;
  /** When the registration lapses (epoch ms); absent = never. */
  readonly expiresAt?: number;
  /**
   * When an operator approved the client (`gatehouse clients approve`); absent until then. With
   * `authorizationServer.dynamicRegistration.requireApproval`, nobody can authorize an unapproved client.
   */
  readonly approvedAt?: number;
}

export interface ClientStore {
  /** Inserts; `false` when the client id exists. */
  create(client: ClientRecord): Promise<boolean>;
  /** The client, or `undefined` when absent or expired at `now`. */
  get(clientId: string, now: number): Promise<ClientRecord | undefined>;
  /**
   * Clients not expired at `now`, oldest first by `createdAt` then `clientId` (as `ListPage.after.id`); at
   * most `page.limit`.
   */
  list(now: number, page: ListPage): Promise<ClientRecord[]>;
  /**
   * Sets (`approved`: `approvedAt = now`, kept from the first approval) or clears `approvedAt`. Returns the
   * resulting record, or `undefined` when the client is absent or expired at `now`.
   */
  setApproved(clientId: string, approved: boolean, now: number): Promise<ClientRecord | undefined>;
  delete(clientId: string): Promise<boolean>;
}

/** A pending authorization code (RFC 6749 §4.1.2), keyed by the code's hash. */
export interface AuthorizationCodeRecord {
  readonly codeHash: string;
  /** The grant the code will create; a replayed code revokes it. */
  readonly grantId: string;
  readonly clientId: string;
  readonly redirectUri: string;
  /** PKCE S256 challenge (RFC 7636). */
  readonly codeChallenge: string;
  /** RFC 8707 resource the tokens are bound to. */
  readonly resource: string;
  readonly scopes: readonly string[];
  readonly principal: PrincipalSnapshot;
  /** When the user authenticated (epoch ms). */
  readonly authTime: number;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export type ConsumeCodeResult =
  /** The first and only successful consumption. */
  | { readonly status: 'consumed'; readonly record: AuthorizationCodeRecord }
  /** The code was already consumed: a replay, whose grant must be revoked. */
  | { readonly status: 'replayed'; readonly record: AuthorizationCodeRecord };

export interface AuthorizationCodeStore {
  create(record: AuthorizationCodeRecord): Promise<void>;
  /**
   * Atomically marks the code consumed. Of N concurrent calls exactly one gets `consumed`; the rest,
   * and every later call until `expiresAt`, get `replayed`. `undefined` when unknown or expired.
   */
  consume(codeHash: string, now: number): Promise<ConsumeCodeResult | undefined>;
  deleteExpired(now: number, limit: number): Promise<number>;
}

/**
 * A grant: one user's authorization of one client for one resource, and its refresh-token family.
 * Each refresh rotates the family to the next generation (RFC 9700 §4.14.2).
 */
export interface GrantRecord {
  readonly id: string;
  readonly clientId: string;
  readonly principal: PrincipalSnapshot;
  readonly scopes: readonly string[];
  readonly resource: string;
  readonly authTime: number;
  readonly createdAt: number;
  /** End of the family's absolute lifetime; no refresh succeeds after it. */
  readonly expiresAt: number;
  readonly revokedAt?: number;
  /** Generation of the current refresh token; 0 when the grant has none. */
  readonly generation: number;
  /** When the current generation was issued. */
  readonly rotatedAt: number;
  /**
   * The response issued for the current generation, encrypted with a key derived from the
   * previous refresh token, so a retry of that token inside the grace window gets the identical answer
   * and nobody without that token can read it. Absent for generation ≤ 1.
   */
  readonly graceResponse?: string;
}

/** Where a refresh token sits in its family. */
export interface RefreshTokenRef {
  readonly grantId: string;
  readonly generation: number;
}

export interface GrantStore {
  /** Inserts the grant and, when given, its first refresh token (generation 1). */
  create(grant: GrantRecord, refreshTokenHash?: string): Promise<void>;
  /** The grant, or `undefined` when absent or expired at `now` (a revoked grant is still returned). */
  get(id: string, now: number): Promise<GrantRecord | undefined>;
  /** Which family and generation a refresh token belongs to; every generation ever issued is found. */
  findRefreshToken(refreshTokenHash: string): Promise<RefreshTokenRef | undefined>;
  /**
   * Compare-and-swap rotation: only if the grant is not revoked, not expired at `rotatedAt`, and its
   * generation still equals `expectedGeneration`, records `newRefreshTokenHash` as generation
   * `expectedGeneration + 1`, sets `rotatedAt` and `graceResponse` (absent when `undefined`), and returns
   * the new record. Of N concurrent rotations of one generation exactly one succeeds; the others get
   * `undefined` and re-read.
   */
  rotate(
    id: string,
    expectedGeneration: number,
    newRefreshTokenHash: string,
    rotatedAt: number,
    graceResponse: string | undefined,
  ): Promise<GrantRecord | undefined>;
  /**
   * Revokes the grant and all its access tokens in one atomic step: sets `revokedAt = now` (the first
   * call wins) and adds the revocation entry `{ kind: 'grant', id, revokedAt: now, expiresAt:
   * revocationExpiresAt }` to the {@link RevocationStore}. The entry is added even when the grant is
   * absent or already revoked (idempotently: an existing entry stands), because a replayed code names a
   * grant that may never have been stored while its access tokens are out, and no crash between two
   * writes can leave a revoked grant whose access tokens are still accepted. Returns the grant when this
   * call revoked it, `undefined` when it was already revoked or absent.
   */
  revoke(id: string, now: number, revocationExpiresAt: number): Promise<GrantRecord | undefined>;
  /**
   * Revokes, as {@link GrantStore.revoke} does, every unrevoked grant the principal
   * (`${idp}#${subject}`) still has in the store, in one atomic step, and returns the grants this call
   * revoked. Grants past `expiresAt` but not yet swept are included: the access tokens they issued last
   * can outlive them.
   */
  revokeByPrincipal(principalKey: string, now: number, revocationExpiresAt: number): Promise<GrantRecord[]>;
  /** Live (unrevoked, unexpired) grants of a principal (`principalKey` = `${idp}#${subject}`). */
  listByPrincipal(principalKey: string, now: number): Promise<GrantRecord[]>;
  /**
   * Grants of every principal not expired at `now` (revoked ones included, as `listByPrincipal` returns
   * them), oldest first by `createdAt` then `id`; at most `page.limit`.
   */
  list(now: number, page: ListPage): Promise<GrantRecord[]>;
  /** Removes up to `limit` grants (and their refresh tokens) expired at `now`; returns how many. */
  deleteExpired(now: number, limit: number): Promise<number>;
}

/** Revoked access tokens: a grant id (all its tokens) or one token's `jti`, until `expiresAt`. */
export interface RevocationRecord {
  readonly kind: 'grant' | 'jti';
  readonly id: string;
  readonly revokedAt: number;
  /** After this the entry can go: every token it covers has expired. */
  readonly expiresAt: number;
}

export interface RevocationStore {
  /** Idempotent. */
  add(record: RevocationRecord): Promise<void>;
  /** Entries still in force at `now` revoked at or after `since` (epoch ms), oldest first. */
  listSince(since: number, now: number): Promise<RevocationRecord[]>;
  /**
   * A number that grows every time an entry is added, through any connection or process on the same data
   * (an idempotent repeat adds nothing). A server reads it on every request — one O(1) read — and reloads
   * the list only when it moved, so a revocation made elsewhere (a CLI command, another instance) takes
   * effect at once without a full read per request. It never decreases, also when `deleteExpired` removes
   * entries; its absolute value means nothing.
   */
  watermark(): Promise<number>;
  deleteExpired(now: number, limit: number): Promise<number>;
}

/** A user's remembered approval of a client (the consent screen is skipped when it covers a request). */
export interface ConsentRecord {
  readonly principalKey: string;
  readonly clientId: string;
  readonly scopes: readonly string[];
  readonly grantedAt: number;
  readonly expiresAt: number;
}

export interface ConsentStore {
  /** Inserts or replaces the consent of `(principalKey, clientId)`. */
  put(record: ConsentRecord): Promise<void>;
  get(principalKey: string, clientId: string, now: number): Promise<ConsentRecord | undefined>;
  delete(principalKey: string, clientId: string): Promise<boolean>;
  /**
   * Deletes every consent of the principal, expired or not (the consent screen comes back for every client,
   * as after a password reset or account removal); returns how many were removed.
   */
  deleteByPrincipal(principalKey: string): Promise<number>;
  listByPrincipal(principalKey: string, now: number): Promise<ConsentRecord[]>;
}

/** A federated user's tokens at the upstream IdP, encrypted at rest. */
export interface UpstreamTokenRecord {
  /** `${idp}#${subject}` of the Gatehouse principal. */
  readonly principalKey: string;
  /** The upstream provider's configured name. */
  readonly provider: string;
  /** Encrypted JSON of the upstream token response. */
  readonly ciphertext: string;
  /** When the upstream access token expires (epoch ms), for refresh scheduling; absent when unknown. */
  readonly accessExpiresAt?: number;
  readonly updatedAt: number;
  /** Optimistic-concurrency version; 1 on first put, +1 on every successful replace. */
  readonly version: number;
}

export interface UpstreamTokenStore {
  get(principalKey: string, provider: string): Promise<UpstreamTokenRecord | undefined>;
  /**
   * Compare-and-swap write: creates when `expectedVersion` is 0 and no record exists, replaces when the
   * stored version equals `expectedVersion`. Returns the stored record (version bumped), or `undefined`
   * when another writer got there first (the caller re-reads, typically finding a fresh token).
   */
  put(
    record: Omit<UpstreamTokenRecord, 'version'>,
    expectedVersion: number,
  ): Promise<UpstreamTokenRecord | undefined>;
  delete(principalKey: string, provider: string): Promise<boolean>;
}

/** A signing key of the authorization server, with its private part encrypted at rest. */
export interface SigningKeyRecord {
  readonly kid: string;
  readonly alg: string;
  /** The public JWK, as published. */
  readonly publicJwk: Readonly<Record<string, unknown>>;
  /** Encrypted private JWK. */
  readonly privateJwkCiphertext: string;
  readonly createdAt: number;
  /** From this time (epoch ms) the key no longer signs. */
  readonly retiresAt: number;
  /** From this time the key leaves the JWKS: every token it signed has expired. */
  readonly expiresAt: number;
}

export interface SigningKeyStore {
  /** Keys not yet expired at `now`, newest first. */
  list(now: number): Promise<SigningKeyRecord[]>;
  /** Inserts; `false` when the kid exists. */
  create(key: SigningKeyRecord): Promise<boolean>;
  deleteExpired(now: number, limit: number): Promise<number>;
}

/**
 * Short-lived keyed records: pending authorization requests, browser login sessions, federation
 * state. Values are JSON objects; `namespace` keeps the kinds apart.
 */
export interface EphemeralStore {
  /** Inserts or replaces. */
  put(
    namespace: string,
    key: string,
    value: Readonly<Record<string, unknown>>,
    expiresAt: number,
  ): Promise<void>;
  get(namespace: string, key: string, now: number): Promise<Record<string, unknown> | undefined>;
  /** Get-and-delete in one atomic step: of N concurrent takes exactly one gets the value. */
  take(namespace: string, key: string, now: number): Promise<Record<string, unknown> | undefined>;
  delete(namespace: string, key: string): Promise<boolean>;
  deleteExpired(now: number, limit: number): Promise<number>;
}

export interface CounterResult {
  /** The count after this increment, within the current window. */
  readonly count: number;
  /** When the current window ends (epoch ms). */
  readonly resetAt: number;
}

/** Fixed-window counters for throttling (login attempts, registrations). */
export interface CounterStore {
  /**
   * Atomically adds one to `key`. A key whose window ended before `now` starts again at 1 with a new
   * window ending at `now + windowMs`.
   */
  increment(key: string, windowMs: number, now: number): Promise<CounterResult>;
  /** The current count and window, or `undefined` when the key is absent or its window ended. */
  peek(key: string, now: number): Promise<CounterResult | undefined>;
  reset(key: string): Promise<void>;
  /**
   * Optional feature, for backends without native expiry (Redis keys carry a TTL instead): removes up to
   * `limit` counters whose window ended at `now` and returns how many. Without a sweep, keys chosen by
   * clients (addresses, usernames) would grow the store without bound.
   */
  deleteExpired?(now: number, limit: number): Promise<number>;
}

/* ----------------------------------------------------------------------------------------------
 * The audit log.
 * -------------------------------------------------------------------------------------------- */

/** One stored line of the audit log: an event as it was emitted, with where it came from. */
export interface AuditEntry {
  /**
   * Unique and, within one writer, increasing: `at` as 13 zero-padded decimal digits, `-`, then random
   * base64url (so ids sort by time across writers too). Appending an id twice stores it once.
   */
  readonly id: string;
  /** When the event happened (epoch ms). */
  readonly at: number;
  /** The event type (`login`, `session.ended`, `tool.called`, …). */
  readonly type: string;
  /** `success` or `failure` for authorization events; the tool call's outcome; absent otherwise. */
  readonly outcome?: string;
  /** The subject of the user concerned (a local user's id, or the federated or external subject), when known. */
  readonly subject?: string;
  /** The user as the event named them (`idp#subject` or `issuer#subject`), when known. */
  readonly principal?: string;
  readonly clientId?: string;
  /** The id of the request that caused the event, as in the logs and error answers. */
  readonly requestId?: string;
  /** The client's address. */
  readonly ip?: string;
  /** The whole event as emitted (never a token, code, secret or password). */
  readonly event: Readonly<Record<string, unknown>>;
}

/** Which audit entries to read. Every given filter must match. */
export interface AuditQuery {
  readonly subject?: string;
  /** An exact type (`login`), or a prefix ending in `.` (`oauth.token.` matches every token event). */
  readonly type?: string;
  /** Entries at or after this time (epoch ms). */
  readonly since?: number;
  /** Entries before this time (epoch ms). */
  readonly until?: number;
  /** Entries strictly after this one in ascending (`at`, `id`) order: how `--follow` reads what is new. */
  readonly after?: { readonly at: number; readonly id: string };
  /** `asc`: oldest first (export, follow); `desc`: newest first (the console, `gatehouse audit`). */
  readonly order: 'asc' | 'desc';
  /** At most this many entries; a positive integer (adapters cap it at 1000). */
  readonly limit: number;
}

export interface AuditStore {
  /** Stores the entries in one step; an entry whose id is stored already is skipped. */
  append(entries: readonly AuditEntry[]): Promise<void>;
  query(query: AuditQuery): Promise<AuditEntry[]>;
  /** Removes up to `limit` entries older than `before` (retention); returns how many. */
  deleteBefore(before: number, limit: number): Promise<number>;
}

/* ----------------------------------------------------------------------------------------------
 * Shared limits and the cluster bus: what several instances on one engine need beyond records.
 * -------------------------------------------------------------------------------------------- */

/** The answer to one `consume`: allowed, or refused with how long until the next point frees up. */
export type RateLimitDecision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly retryAfterSeconds: number };

/**
 * A fixed-window limit per key (`rate-limiter-flexible` on the store's engine): each `consume` spends one
 * point; a key that spent all its points in the window is refused until the window ends. Every instance on
 * the same engine shares the counts. A backend that cannot answer rejects with `ERR_STORE_UNAVAILABLE`:
 * callers fail closed, never reading a failure as "allowed".
 */
export interface RateLimiter {
  consume(key: string): Promise<RateLimitDecision>;
}

export interface RateLimiterOptions {
  /** Points (allowed events) per key per window; a positive integer. */
  readonly points: number;
  /** Length of the window, in seconds; a positive integer. */
  readonly durationSeconds: number;
  /** Keeps limiters sharing one engine apart (`ws-connect-user`, …). */
  readonly keyPrefix: string;
}

/**
 * What one instance tells the others on the same engine. Messages are hints to act at once; the state they
 * describe is always in the store first, so an instance that missed one (the bus reconnected) loses
 * nothing by re-reading it.
 */
export type ClusterMessage =
  /** Revocation entries were added: reload the revocation list now. */
  | { readonly type: 'revocations.changed' }
  /** A session ended (by its user, the sweeper, eviction or an operator): release its upstream. */
  | { readonly type: 'session.ended'; readonly sessionId: string; readonly reason: string }
  /** Signing keys were created or retired: reload the key set. */
  | { readonly type: 'signing-keys.changed' };

/**
 * Broadcast between the instances sharing one engine (PostgreSQL `LISTEN/NOTIFY`, Redis pub/sub). Delivery
 * is at most once and only while connected; every listener must stay correct without it, by polling.
 */
export interface ClusterBus {
  /** Sends to every instance, this one included; resolves once the engine accepted the message. */
  publish(message: ClusterMessage): Promise<void>;
  /** Calls `listener` for every message received; returns the unsubscribe function. */
  subscribe(listener: (message: ClusterMessage) => void): () => void;
  /**
   * Calls `listener` with `true` each time the subscription is (re)established — messages may have been
   * missed before it, so listeners resync — and with `false` when it is lost. Returns the unsubscribe.
   */
  onConnectionChange(listener: (connected: boolean) => void): () => void;
  /** Whether the subscription is established now. */
  readonly connected: boolean;
  close(): Promise<void>;
}

/** All ports of one backend. */
export interface Stores {
  readonly sessions: SessionStore;
  readonly users: UserStore;
  readonly clients: ClientStore;
  readonly codes: AuthorizationCodeStore;
  readonly grants: GrantStore;
  readonly revocations: RevocationStore;
  readonly consents: ConsentStore;
  readonly upstreamTokens: UpstreamTokenStore;
  readonly signingKeys: SigningKeyStore;
  readonly ephemeral: EphemeralStore;
  readonly counters: CounterStore;
  readonly audit: AuditStore;
  /** Limits shared by every instance on this engine (in-process for memory and SQLite). */
  rateLimiter(options: RateLimiterOptions): RateLimiter;
  /**
   * The cluster bus of an engine several instances share (PostgreSQL, Redis); absent for memory and SQLite,
   * whose other processes (the CLI) are reached by polling the store.
   */
  readonly bus?: ClusterBus;
  /** Which adapter this is (`memory`, `sqlite`, …), for logs and diagnostics. */
  readonly kind: string;
  /** Releases connections and files. */
  close(): Promise<void>;
}
