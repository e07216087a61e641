import type { Audit } from '../../ops/audit.js';
import type { Clock } from '../../ops/clock.js';
import type { PrincipalSnapshot, Stores } from '../../stores/ports.js';
import type { RevocationList } from '../../tokens/revocation.js';
import type { AccessTokenIssuer } from '../tokens.js';

/** What the token endpoint's grants share. */
export interface GrantContext {
  readonly stores: Pick<Stores, 'codes' | 'grants'>;
  readonly issuer: AccessTokenIssuer;
  readonly revocations: RevocationList;
  readonly audit: Audit;
  readonly clock: Clock;
  readonly accessTokenTtlSeconds: number;
  readonly refreshTokenTtlSeconds: number;
  readonly refreshGraceSeconds: number;
  /**
   * Whether the user's account still stands behind what they authenticated at `authTime`: a local account
   * that was removed, disabled or re-passworded since issues nothing more (federated users: always true).
   * Without `authTime`, only that the account exists and is enabled.
   */
  readonly accountActive: (principal: PrincipalSnapshot, authTime?: number) => Promise<boolean>;
  /**
   * Whether this user may still hold tokens for `resource` (the admin resource: only administrators).
   * Checked when a code is redeemed and on every refresh. Default: every resource is allowed.
   */
  readonly resourceAllowed?: (resource: string, principal: PrincipalSnapshot) => Promise<boolean>;
}

/**
 * Revokes a grant and every access token issued under it: the grant can mint nothing more, and the
 * revocation list refuses its outstanding access tokens until the longest of them has expired. The store
 * writes the grant and its revocation entry in one step (so other processes see both or neither, and a
 * replayed code for a grant never stored still revokes its access tokens); this process then only adds
 * the entry to its in-memory list.
 */
export async function revokeGrant(context: GrantContext, grantId: string): Promise<boolean> {
  const now = context.clock.now();
  const entry = {
    kind: 'grant',
    id: grantId,
    revokedAt: now,
    expiresAt: now + (context.accessTokenTtlSeconds + 60) * 1000,
  } as const;
  const revoked = await context.stores.grants.revoke(grantId, now, entry.expiresAt);
  await context.revocations.remember(entry);
  return revoked !== undefined;
}
