import { GatehouseError } from '../errors/gatehouse-error.js';
import { createLocalAccounts, normalizeUsername } from '../identity/local-accounts.js';
import type { PasswordHashOptions } from '../identity/password.js';
import type { Clock } from '../ops/clock.js';
import type { EventBus } from '../ops/events.js';
import type {
  ClientRecord,
  GrantRecord,
  ListPage,
  SessionRecord,
  SigningKeyRecord,
  Stores,
  UserRecord,
} from '../stores/ports.js';
import { snapshotPrincipalKey } from '../stores/principal-key.js';
import type { KeyStore } from '../tokens/keys.js';
import { announceRevocations } from '../tokens/revocation.js';
import { type AccountRevocation, revokeAccountAccess } from './accounts.js';

/**
 * The operator's verbs, once: the CLI, the admin API and the console are thin shells over this service, so
 * "sign out everywhere" means the same thing wherever it is pressed. Everything is read from and written
 * to the store (so it holds for every instance) and announced on the cluster bus where there is one.
 *
 * Errors: `GatehouseError` with `ERR_USER_NOT_FOUND`, `ERR_SESSION_NOT_FOUND`, `ERR_GRANT_NOT_FOUND`,
 * `ERR_CLIENT_NOT_FOUND`, `ERR_USER_EXISTS`, `ERR_PASSWORD_POLICY`, `ERR_BAD_REQUEST` (a malformed
 * argument), `ERR_STORE_UNAVAILABLE`.
 */
export interface AdminService {
  readonly users: {
    list(): Promise<AdminUser[]>;
    get(username: string): Promise<AdminUser>;
    add(input: {
      username: string;
      password: string;
      email?: string;
      name?: string;
      admin?: boolean;
    }): Promise<AdminUser>;
    /** Deletes the account and takes all its access away. */
    remove(username: string): Promise<AccountRevocation>;
    setPassword(username: string, password: string): Promise<AccountRevocation>;
    /** Disabling also takes all access away; enabling restores nothing but the ability to sign in. */
    disable(username: string): Promise<AccountRevocation>;
    enable(username: string): Promise<AdminUser>;
    /**
     * "Sign out everywhere": grants and refresh families revoked, consents forgotten, browser sign-ins
     * ended, live sessions ended on every transport and instance; the account stays usable.
     */
    revoke(username: string): Promise<AccountRevocation>;
    /** Grants or removes the `admin` role (a removed admin's admin tokens stop working at once). */
    setAdmin(username: string, admin: boolean): Promise<AdminUser>;
  };
  readonly sessions: {
    /** Live MCP sessions, oldest first; one user's when `username` is given. */
    list(filter?: { username?: string; limit?: number }): Promise<AdminSession[]>;
    /** Ends one session (its upstream is released wherever it runs). */
    end(sessionId: string): Promise<AdminSession>;
    /** Ends every live session of one user, leaving their grants alone; returns how many ended. */
    endForUser(username: string): Promise<number>;
  };
  readonly grants: {
    /** Grants (connected clients) not expired, oldest first; one user's when `username` is given. */
    list(filter?: { username?: string; limit?: number }): Promise<AdminGrant[]>;
    /** Revokes one grant: its refresh family and every access token issued under it. */
    revoke(grantId: string): Promise<AdminGrant>;
  };
  readonly clients: {
    /** Dynamically registered clients (CIMD clients are not stored). */
    list(filter?: { limit?: number }): Promise<AdminClient[]>;
    show(clientId: string): Promise<AdminClient>;
    /** Deletes the registration and revokes every grant issued to it; returns how many grants were revoked. */
    remove(clientId: string): Promise<{ client: AdminClient; grantsRevoked: number }>;
    approve(clientId: string): Promise<AdminClient>;
  };
  readonly keys: {
    /** Signing keys not yet expired, newest first, public parts only. */
    list(): Promise<AdminSigningKey[]>;
    /** Generates the next signing key now; the previous one keeps verifying until its tokens expire. */
    rotate(): Promise<AdminSigningKey>;
  };
  readonly audit: {
    /** Newest first unless `order: 'asc'`. `username` resolves to the local user's id. */
    query(filter: AdminAuditFilter): Promise<AdminAuditEntry[]>;
  };
}

export interface AdminUser {
  readonly id: string;
  readonly username: string;
  readonly email?: string;
  readonly name?: string;
  readonly admin: boolean;
  readonly disabled: boolean;
  /** ISO 8601. */
  readonly createdAt: string;
  readonly disabledAt?: string;
}

export interface AdminSession {
  readonly id: string;
  /** The local username when the principal is a local account; otherwise absent. */
  readonly username?: string;
  /** `issuer#subject`, as the session is bound. */
  readonly principal: string;
  /** `streamable-http`, `websocket` or `legacy-sse`. */
  readonly transport: string;
  /** The MCP client's name and version from `initialize`, when known. */
  readonly client?: string;
  readonly protocolVersion?: string;
  readonly createdAt: string;
  readonly lastSeenAt: string;
  readonly expiresAt: string;
}

export interface AdminGrant {
  readonly id: string;
  readonly clientId: string;
  readonly clientName?: string;
  readonly username?: string;
  /** `idp#subject`. */
  readonly principal: string;
  readonly scopes: readonly string[];
  readonly resource: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly revokedAt?: string;
}

export interface AdminClient {
  readonly clientId: string;
  readonly clientName?: string;
  readonly clientUri?: string;
  readonly redirectUris: readonly string[];
  readonly grantTypes: readonly string[];
  readonly tokenEndpointAuthMethod: string;
  readonly applicationType: string;
  readonly createdAt: string;
  readonly expiresAt?: string;
  readonly approvedAt?: string;
}

export interface AdminSigningKey {
  readonly kid: string;
  readonly alg: string;
  /** `signing` (the newest unretired key), `verifying` (retired, still published) . */
  readonly state: 'signing' | 'verifying';
  readonly createdAt: string;
  readonly retiresAt: string;
  readonly expiresAt: string;
}

export interface AdminAuditFilter {
  readonly username?: string;
  readonly subject?: string;
  /** An exact type, or a prefix ending in `.`. */
  readonly type?: string;
  /** Epoch ms. */
  readonly since?: number;
  readonly until?: number;
  readonly after?: { readonly at: number; readonly id: string };
  readonly order?: 'asc' | 'desc';
  /** Default 100, at most 1000. */
  readonly limit?: number;
}

export interface AdminAuditEntry {
  readonly id: string;
  /** ISO 8601. */
  readonly time: string;
  /** Epoch ms, for cursors. */
  readonly at: number;
  readonly type: string;
  readonly outcome?: string;
  readonly subject?: string;
  readonly username?: string;
  readonly clientId?: string;
  readonly requestId?: string;
  readonly ip?: string;
  readonly event: Readonly<Record<string, unknown>>;
}

/** What the service reads and writes; the gateway, the CLI and tests build it the same way. */
export interface AdminServiceDeps {
  readonly stores: Stores;
  /** The `iss` of Gatehouse's own tokens: live sessions are bound to `issuer#subject`. */
  readonly issuer: string;
  /** The longest an access token lives, in seconds (revocation entries outlive it). */
  readonly accessTokenTtlSeconds: number;
  readonly clock: Clock;
  /** Where `session.ended` and `account.revoked` are reported (the audit log subscribes). */
  readonly events?: EventBus | undefined;
  /**
   * The deployment's signing keys (`openDeploymentKeys`), for `keys.rotate`: the successor is generated by
   * the very code the gateway rotates with, and announced on the bus. Without it `keys.rotate` is refused.
   */
  readonly keys?: Pick<KeyStore, 'rotate'> | undefined;
  /** scrypt parameters for passwords set here. Default: the production parameters. */
  readonly hashOptions?: PasswordHashOptions | undefined;
  /**
   * Called with each session an operator ended, after the store and the bus heard of it: a gateway running
   * the service in its own process releases an upstream it holds at once, bus or not (without it, a gateway
   * on SQLite finds the session gone at its next reconcile).
   */
  readonly sessionEnded?: ((sessionId: string) => void) | undefined;
}

/** The role that lets a local account use the admin API and console. */
export const ADMIN_ROLE = 'admin';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
/** Page size when a command walks every grant (removing a client). */
const GRANT_PAGE = 500;

/**
 * The one implementation of {@link AdminService}, over the store ports. Every verb writes the store first
 * and then announces on the cluster bus, so it holds for every instance; a running gateway without a bus
 * (SQLite) learns of revocations from the store's watermark on its next request and of ended sessions
 * when it next resumes them (404) or reconciles its live ones (every `sessions.sweepIntervalMs`).
 *
 * @example
 * ```ts
 * const admin = createAdminService({ stores, issuer, accessTokenTtlSeconds: 300, clock: systemClock });
 * await admin.users.revoke('alice'); // signed out everywhere
 * ```
 */
export function createAdminService(deps: AdminServiceDeps): AdminService {
  const { stores, clock, issuer } = deps;
  const accounts = createLocalAccounts({
    users: stores.users,
    counters: stores.counters,
    clock,
    ...(deps.hashOptions !== undefined && { hashOptions: deps.hashOptions }),
  });
  const revocation = {
    stores,
    issuer,
    accessTokenTtlSeconds: deps.accessTokenTtlSeconds,
    clock,
    events: deps.events,
  };
  /** Revocation entries must outlive every access token the revoked grant issued. */
  const revocationExpiresAt = (now: number) => now + (deps.accessTokenTtlSeconds + 60) * 1000;
  const sessionOwnerPrefix = `${issuer}#`;

  async function findUser(username: string): Promise<UserRecord> {
    const normalized = tryNormalize(username);
    const user = normalized === undefined ? undefined : await stores.users.findByUsername(normalized);
    if (user === undefined) {
      throw new GatehouseError(
        'ERR_USER_NOT_FOUND',
        `no user "${username}"; see the accounts with \`gatehouse users list\``,
      );
    }
    return user;
  }

  /** Usernames of local accounts by id, looked up once per call. */
  function usernames(): (userId: string) => Promise<string | undefined> {
    const known = new Map<string, Promise<string | undefined>>();
    return (userId) => {
      let found = known.get(userId);
      if (found === undefined) {
        found = stores.users.get(userId).then((user) => user?.username);
        known.set(userId, found);
      }
      return found;
    };
  }

  async function toSession(
    record: SessionRecord,
    usernameOf: (userId: string) => Promise<string | undefined>,
  ): Promise<AdminSession> {
    const subject = record.principalKey.startsWith(sessionOwnerPrefix)
      ? record.principalKey.slice(sessionOwnerPrefix.length)
      : undefined;
    const username = subject === undefined ? undefined : await usernameOf(subject);
    const initialize = isRecord(record.data.initialize) ? record.data.initialize : undefined;
    const clientInfo = isRecord(initialize?.clientInfo) ? initialize.clientInfo : undefined;
    const clientName = typeof clientInfo?.name === 'string' ? clientInfo.name : undefined;
    const clientVersion = typeof clientInfo?.version === 'string' ? clientInfo.version : undefined;
    const protocolVersion =
      typeof initialize?.protocolVersion === 'string' ? initialize.protocolVersion : undefined;
    return {
      id: record.id,
      ...(username !== undefined && { username }),
      principal: record.principalKey,
      transport: record.kind,
      ...(clientName !== undefined && {
        client: clientVersion === undefined ? clientName : `${clientName} ${clientVersion}`,
      }),
      ...(protocolVersion !== undefined && { protocolVersion }),
      createdAt: iso(record.createdAt),
      lastSeenAt: iso(record.lastSeenAt),
      expiresAt: iso(Math.min(record.idleExpiresAt, record.absoluteExpiresAt)),
    };
  }

  /** Reports the end and tells every instance to release the session's upstream. */
  async function announceEnded(record: SessionRecord): Promise<void> {
    deps.events?.emit({
      type: 'session.ended',
      sessionId: record.id,
      reason: 'ended_by_operator',
      principal: record.principalKey,
    });
    await stores.bus?.publish({ type: 'session.ended', sessionId: record.id, reason: 'ended_by_operator' });
    deps.sessionEnded?.(record.id);
  }

  function grantMapper(): (grant: GrantRecord) => Promise<AdminGrant> {
    const usernameOf = usernames();
    const clientNames = new Map<string, Promise<string | undefined>>();
    const clientNameOf = (clientId: string) => {
      let found = clientNames.get(clientId);
      if (found === undefined) {
        found = stores.clients.get(clientId, clock.now()).then((client) => client?.clientName);
        clientNames.set(clientId, found);
      }
      return found;
    };
    return async (grant) => {
      const claimed = grant.principal.claims?.username;
      const username =
        grant.principal.idp === 'local'
          ? await usernameOf(grant.principal.subject)
          : typeof claimed === 'string'
            ? claimed
            : undefined;
      const clientName = await clientNameOf(grant.clientId);
      return {
        id: grant.id,
        clientId: grant.clientId,
        ...(clientName !== undefined && { clientName }),
        ...(username !== undefined && { username }),
        principal: snapshotPrincipalKey(grant.principal),
        scopes: [...grant.scopes],
        resource: grant.resource,
        createdAt: iso(grant.createdAt),
        expiresAt: iso(grant.expiresAt),
        ...(grant.revokedAt !== undefined && { revokedAt: iso(grant.revokedAt) }),
      };
    };
  }

  async function requireClient(clientId: string): Promise<ClientRecord> {
    const client = await stores.clients.get(clientId, clock.now());
    if (client === undefined) {
      throw new GatehouseError(
        'ERR_CLIENT_NOT_FOUND',
        `no registered client "${clientId}"; see them with \`gatehouse clients list\``,
      );
    }
    return client;
  }

  /** Revokes every unrevoked grant of `clientId`, walking all grants a page at a time. */
  async function revokeGrantsOf(clientId: string): Promise<number> {
    const now = clock.now();
    const expiresAt = revocationExpiresAt(now);
    // Grants that expired less than an access-token lifetime ago may still have tokens out (see the sweep).
    const listedAt = now - (deps.accessTokenTtlSeconds + 60) * 1000;
    let after: ListPage['after'];
    let revoked = 0;
    for (;;) {
      const page = await stores.grants.list(listedAt, { limit: GRANT_PAGE, ...(after && { after }) });
      for (const grant of page) {
        if (grant.clientId !== clientId || grant.revokedAt !== undefined) continue;
        if ((await stores.grants.revoke(grant.id, now, expiresAt)) !== undefined) revoked++;
      }
      const last = page.at(-1);
      if (last === undefined || page.length < GRANT_PAGE) break;
      after = { createdAt: last.createdAt, id: last.id };
    }
    if (revoked > 0) await announceRevocations(stores.bus);
    return revoked;
  }

  return {
    users: {
      async list() {
        return (await stores.users.list()).map(toAdminUser);
      },
      async get(username) {
        return toAdminUser(await findUser(username));
      },
      async add(input) {
        const account = await accounts.add({
          username: input.username,
          password: input.password,
          ...(input.email !== undefined && { email: input.email }),
          ...(input.name !== undefined && { name: input.name }),
        });
        if (input.admin === true) {
          const updated = await stores.users.setRoles(account.id, [ADMIN_ROLE], clock.now());
          if (updated !== undefined) return toAdminUser(updated);
        }
        return toAdminUser(await findUser(account.username));
      },
      async remove(username) {
        const account = await accounts.remove((await findUser(username)).username);
        return revokeAccountAccess(revocation, account.id, 'removed');
      },
      async setPassword(username, password) {
        const account = await accounts.setPassword((await findUser(username)).username, password);
        return revokeAccountAccess(revocation, account.id, 'password_changed');
      },
      async disable(username) {
        const account = await accounts.setDisabled((await findUser(username)).username, true);
        return revokeAccountAccess(revocation, account.id, 'disabled');
      },
      async enable(username) {
        const account = await accounts.setDisabled((await findUser(username)).username, false);
        return toAdminUser(await findUser(account.username));
      },
      async revoke(username) {
        const user = await findUser(username);
        // Browser sign-ins, codes and grants authenticated before now stop counting first, so nothing
        // authenticated earlier can mint a new grant while the existing ones are being revoked.
        if ((await stores.users.signOut(user.id, clock.now())) === undefined) {
          throw new GatehouseError('ERR_USER_NOT_FOUND', `no user "${username}"`);
        }
        return revokeAccountAccess(revocation, user.id, 'signed_out_everywhere');
      },
      async setAdmin(username, admin) {
        const user = await findUser(username);
        const others = user.roles.filter((role) => role !== ADMIN_ROLE);
        const roles = admin ? [...others, ADMIN_ROLE] : others;
        const updated = await stores.users.setRoles(user.id, roles, clock.now());
        if (updated === undefined) throw new GatehouseError('ERR_USER_NOT_FOUND', `no user "${username}"`);
        return toAdminUser(updated);
      },
    },

    sessions: {
      async list(filter = {}) {
        const limit = clampLimit(filter.limit);
        const now = clock.now();
        const records =
          filter.username === undefined
            ? await stores.sessions.list(now, { limit })
            : (
                await stores.sessions.listByPrincipal(
                  `${sessionOwnerPrefix}${(await findUser(filter.username)).id}`,
                  now,
                )
              ).slice(0, limit);
        const usernameOf = usernames();
        return Promise.all(records.map((record) => toSession(record, usernameOf)));
      },
      async end(sessionId) {
        const record = sessionId === '' ? undefined : await stores.sessions.get(sessionId, clock.now());
        // The delete is the arbiter: of two operators ending one session, one ends it, one hears "not found".
        if (record === undefined || !(await stores.sessions.delete(record.id))) {
          throw new GatehouseError(
            'ERR_SESSION_NOT_FOUND',
            `no live session "${sessionId}"; see them with \`gatehouse sessions list\``,
          );
        }
        await announceEnded(record);
        return toSession(record, usernames());
      },
      async endForUser(username) {
        const user = await findUser(username);
        const ended = await stores.sessions.deleteByPrincipal(`${sessionOwnerPrefix}${user.id}`);
        for (const record of ended) await announceEnded(record);
        return ended.length;
      },
    },

    grants: {
      async list(filter = {}) {
        const limit = clampLimit(filter.limit);
        const now = clock.now();
        const records =
          filter.username === undefined
            ? await stores.grants.list(now, { limit })
            : (
                await stores.grants.listByPrincipal(
                  snapshotPrincipalKey({ idp: 'local', subject: (await findUser(filter.username)).id }),
                  now,
                )
              ).slice(0, limit);
        const toGrant = grantMapper();
        return Promise.all(records.map(toGrant));
      },
      async revoke(grantId) {
        const now = clock.now();
        const grant = grantId === '' ? undefined : await stores.grants.get(grantId, now);
        if (grant === undefined) {
          throw new GatehouseError(
            'ERR_GRANT_NOT_FOUND',
            `no grant "${grantId}"; see them with \`gatehouse grants list\``,
          );
        }
        // The store adds the grant's revocation entry in the same step: its access tokens are refused
        // wherever the revocation watermark is read, from the moment this returns.
        const revoked = await stores.grants.revoke(grant.id, now, revocationExpiresAt(now));
        await announceRevocations(stores.bus);
        return grantMapper()(revoked ?? grant);
      },
    },

    clients: {
      async list(filter = {}) {
        return (await stores.clients.list(clock.now(), { limit: clampLimit(filter.limit) })).map(
          toAdminClient,
        );
      },
      async show(clientId) {
        return toAdminClient(await requireClient(clientId));
      },
      async remove(clientId) {
        const client = await requireClient(clientId);
        // Deleted first: from now on the token endpoint knows no such client, so no code or refresh token of
        // it can mint anything while its grants are being revoked.
        if (!(await stores.clients.delete(client.clientId))) {
          throw new GatehouseError('ERR_CLIENT_NOT_FOUND', `no registered client "${clientId}"`);
        }
        const grantsRevoked = await revokeGrantsOf(client.clientId);
        return { client: toAdminClient(client), grantsRevoked };
      },
      async approve(clientId) {
        const approved = await stores.clients.setApproved(clientId, true, clock.now());
        if (approved === undefined) {
          throw new GatehouseError(
            'ERR_CLIENT_NOT_FOUND',
            `no registered client "${clientId}"; see them with \`gatehouse clients list\``,
          );
        }
        return toAdminClient(approved);
      },
    },

    keys: {
      async list() {
        return describeKeys(await stores.signingKeys.list(clock.now()), clock.now());
      },
      async rotate() {
        if (deps.keys === undefined) {
          throw new GatehouseError('ERR_BAD_REQUEST', 'signing keys are not available here');
        }
        const created = await deps.keys.rotate();
        const now = clock.now();
        const listed = describeKeys(await stores.signingKeys.list(now), now);
        const key = listed.find((candidate) => candidate.kid === created.kid);
        if (key === undefined)
          throw new GatehouseError('ERR_KEY_INVALID', 'the new signing key was not stored');
        return key;
      },
    },

    audit: {
      async query(filter) {
        const subject = filter.username === undefined ? filter.subject : (await findUser(filter.username)).id;
        const entries = await stores.audit.query({
          ...(subject !== undefined && { subject }),
          ...(filter.type !== undefined && { type: filter.type }),
          ...(filter.since !== undefined && { since: filter.since }),
          ...(filter.until !== undefined && { until: filter.until }),
          ...(filter.after !== undefined && { after: filter.after }),
          order: filter.order ?? 'desc',
          limit: clampLimit(filter.limit),
        });
        const usernameOf = usernames();
        return Promise.all(
          entries.map(async (entry) => {
            const username = entry.subject === undefined ? undefined : await usernameOf(entry.subject);
            return {
              id: entry.id,
              time: iso(entry.at),
              at: entry.at,
              type: entry.type,
              ...(entry.outcome !== undefined && { outcome: entry.outcome }),
              ...(entry.subject !== undefined && { subject: entry.subject }),
              ...(username !== undefined && { username }),
              ...(entry.clientId !== undefined && { clientId: entry.clientId }),
              ...(entry.requestId !== undefined && { requestId: entry.requestId }),
              ...(entry.ip !== undefined && { ip: entry.ip }),
              event: entry.event,
            };
          }),
        );
      },
    },
  };
}

function toAdminUser(user: UserRecord): AdminUser {
  return {
    id: user.id,
    username: user.username,
    ...(user.email !== undefined && { email: user.email }),
    ...(user.name !== undefined && { name: user.name }),
    admin: user.roles.includes(ADMIN_ROLE),
    disabled: user.disabledAt !== undefined,
    createdAt: iso(user.createdAt),
    ...(user.disabledAt !== undefined && { disabledAt: iso(user.disabledAt) }),
  };
}

function toAdminClient(client: ClientRecord): AdminClient {
  return {
    clientId: client.clientId,
    ...(client.clientName !== undefined && { clientName: client.clientName }),
    ...(client.clientUri !== undefined && { clientUri: client.clientUri }),
    redirectUris: [...client.redirectUris],
    grantTypes: [...client.grantTypes],
    tokenEndpointAuthMethod: client.tokenEndpointAuthMethod,
    applicationType: client.applicationType,
    createdAt: iso(client.createdAt),
    ...(client.expiresAt !== undefined && { expiresAt: iso(client.expiresAt) }),
    ...(client.approvedAt !== undefined && { approvedAt: iso(client.approvedAt) }),
  };
}

/** Newest first; the newest key not yet retired signs (as `KeyStore` picks it), the others only verify. */
function describeKeys(records: readonly SigningKeyRecord[], now: number): AdminSigningKey[] {
  const sorted = [...records].sort((a, b) => b.createdAt - a.createdAt || (a.kid < b.kid ? -1 : 1));
  const signing = sorted.find((record) => record.retiresAt > now) ?? sorted[0];
  return sorted.map((record) => ({
    kid: record.kid,
    alg: record.alg,
    state: record === signing ? 'signing' : 'verifying',
    createdAt: iso(record.createdAt),
    retiresAt: iso(record.retiresAt),
    expiresAt: iso(record.expiresAt),
  }));
}

function clampLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new GatehouseError('ERR_BAD_REQUEST', 'limit must be a positive integer');
  }
  return Math.min(limit, MAX_LIMIT);
}

function tryNormalize(username: string): string | undefined {
  try {
    return normalizeUsername(username);
  } catch {
    return undefined;
  }
}

const iso = (epochMs: number): string => new Date(epochMs).toISOString();

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
