import type { Audit } from '../../ops/audit.js';
import type { Clock } from '../../ops/clock.js';
import type { Stores } from '../../stores/ports.js';
import type { RevocationList } from '../revocation-list.js';
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
}

/**
 * Revokes a grant and every access token issued under it: the grant can mint nothing more, and the
 * revocation list refuses its outstanding access tokens until the longest of them has expired.
 */
export async function revokeGrant(context: GrantContext, grantId: string): Promise<boolean> {
  const now = context.clock.now();
  const revoked = await context.stores.grants.revoke(grantId, now);
  await context.revocations.revoke({
    kind: 'grant',
    id: grantId,
    revokedAt: now,
    expiresAt: now + (context.accessTokenTtlSeconds + 60) * 1000,
  });
  return revoked !== undefined;
}
