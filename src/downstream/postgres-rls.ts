import type { ClientBase } from 'pg';
import { GatehouseError } from '../errors/gatehouse-error.js';
import type { Principal } from '../identity/principal.js';
import { type PostgresConnection, runInTransaction } from './postgres-transaction.js';

/**
 * Claims to run a query as, when there is no {@link Principal} at hand (a stdio upstream that received
 * its user through the environment, say). `sub` is required and must be non-empty.
 */
export interface RlsClaims {
  readonly sub: string;
  readonly email?: string;
  readonly [claim: string]: unknown;
}

export interface UserContextOptions {
  /**
   * Database role the queries run as, switched to with the transaction-local equivalent of
   * `SET LOCAL ROLE`. Must exist, must be granted to the connecting login role, and must be subject to
   * row-level security (neither superuser nor `BYPASSRLS`: that is refused). Default `authenticated`.
   */
  readonly role?: string;
}

export interface ServiceRoleOptions {
  /**
   * Role to switch to for the transaction (for example Supabase's `service_role`). Default: none, the
   * connection's own login role.
   */
  readonly role?: string;
}

const ROLE_NAME = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

/**
 * Runs `fn` as the user, the way Supabase's data API (PostgREST) does: in one transaction whose
 * transaction-local settings are `request.jwt.claims` (the claims as JSON — the principal's verified claims
 * with `sub`, `email` and `role` set), `request.jwt.claim.sub` / `.role` / `.email` for policies written
 * against older PostgREST, and the role `authenticated`. Row-level security policies such as
 * `auth.uid() = user_id` (see `applyPostgresAuthSchema`) therefore hold for every query `fn` makes on the
 * client it is given.
 *
 * Commits when `fn` resolves and rolls back when it throws (the error is re-thrown). Everything is set
 * with `set_config(…, true)`, so the role and the claims end with the transaction: a pooled connection
 * never carries one user's identity into another's query. Claims travel only as bind parameters, never in
 * SQL text. A role that bypasses row-level security is refused (`ERR_CONFIG_INVALID`) before `fn` runs:
 * querying "as the user" must never silently fall back to the server's own privileges.
 *
 * Pass a `pg.Pool` (a connection is checked out and always released) or an idle connected client (yours
 * to keep; it must not be inside a transaction already).
 *
 * @example
 * ```ts
 * const rows = await withUserContext(pool, principal, async (db) =>
 *   (await db.query('select id, body from notes')).rows, // only the caller's notes, by RLS
 * );
 * ```
 */
export async function withUserContext<T>(
  db: PostgresConnection,
  identity: Principal | RlsClaims,
  fn: (client: ClientBase) => Promise<T>,
  options: UserContextOptions = {},
): Promise<T> {
  const role = checkRole(options.role ?? 'authenticated', 'role');
  const claims = userClaims(identity, role);
  const email = typeof claims.email === 'string' ? claims.email : '';
  return runInTransaction(
    db,
    async (client) => {
      const result = await client.query<{ bypasses: boolean | null }>(
        `SELECT set_config('role', $1, true),
                set_config('request.jwt.claims', $2, true),
                set_config('request.jwt.claim.sub', $3, true),
                set_config('request.jwt.claim.role', $1, true),
                set_config('request.jwt.claim.email', $4, true),
                (SELECT rolsuper OR rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = $1) AS bypasses`,
        [role, JSON.stringify(claims), claims.sub, email],
      );
      if (result.rows[0]?.bypasses !== false) {
        throw new GatehouseError(
          'ERR_CONFIG_INVALID',
          `role "${role}" bypasses row-level security; queries as a user need a role subject to it`,
          { details: { role } },
        );
      }
    },
    fn,
  );
}

/**
 * Runs `fn` with Gatehouse's own service privileges — for Gatehouse's optional per-session state storage
 * and similar bookkeeping only. It carries **no user identity** (`request.jwt.claims` and
 * `request.jwt.claim.*` are cleared for the transaction, so `auth.uid()` is null) and is **never used for
 * authentication or to read a user's data on their behalf**: tool calls made for a user go through
 * {@link withUserContext}. Commit, rollback and release behave as in `withUserContext`.
 *
 * @example
 * ```ts
 * await withServiceRole(pool, (db) => db.query('delete from gatehouse_state where expires_at < now()'));
 * ```
 */
export async function withServiceRole<T>(
  db: PostgresConnection,
  fn: (client: ClientBase) => Promise<T>,
  options: ServiceRoleOptions = {},
): Promise<T> {
  const role = options.role === undefined ? undefined : checkRole(options.role, 'role');
  return runInTransaction(
    db,
    async (client) => {
      await client.query(
        `SELECT set_config('request.jwt.claims', '', true),
                set_config('request.jwt.claim.sub', '', true),
                set_config('request.jwt.claim.role', '', true),
                set_config('request.jwt.claim.email', '', true)`,
      );
      if (role !== undefined) await client.query(`SELECT set_config('role', $1, true)`, [role]);
    },
    fn,
  );
}

/** The claims JSON for `request.jwt.claims`: the verified claims as issued, with `sub`, `email` and `role` fixed. */
function userClaims(identity: Principal | RlsClaims, role: string): RlsClaims & { role: string } {
  const base: Record<string, unknown> = isPrincipal(identity)
    ? {
        ...identity.claims,
        sub: identity.subject,
        iss: identity.issuer,
        ...(identity.email === undefined || identity.email === '' ? {} : { email: identity.email }),
      }
    : { ...identity };
  const sub = base.sub;
  if (typeof sub !== 'string' || sub.trim() === '') {
    throw new GatehouseError('ERR_BAD_REQUEST', 'a user context needs a non-empty subject (sub)');
  }
  if (base.email === '' || (base.email !== undefined && typeof base.email !== 'string')) delete base.email;
  // The database role decides what RLS lets through, so the `role` claim must name it — an IdP's own
  // `role` claim (WorkOS `admin`, say) would otherwise make `auth.role()` lie about how the query runs.
  return { ...base, sub, role };
}

function isPrincipal(identity: Principal | RlsClaims): identity is Principal {
  return (
    typeof identity.subject === 'string' &&
    typeof identity.issuer === 'string' &&
    typeof identity.claims === 'object' &&
    identity.claims !== null
  );
}

function checkRole(role: string, option: string): string {
  if (!ROLE_NAME.test(role) || role.toLowerCase() === 'none') {
    throw new GatehouseError('ERR_CONFIG_INVALID', `${option} must be a plain Postgres role name`, {
      details: { option },
    });
  }
  return role;
}
