import type { Clock } from '../ops/clock.js';
import type { EventBus } from '../ops/events.js';
import type { ClusterBus, SessionRecord, Stores } from '../stores/ports.js';
import { snapshotPrincipalKey } from '../stores/principal-key.js';
import { announceRevocations } from '../tokens/revocation.js';

/** Why an account's access is being taken away. */
export type AccountRevocationReason = 'removed' | 'disabled' | 'password_changed' | 'signed_out_everywhere';

export interface AccountRevocationDeps {
  readonly stores: Pick<Stores, 'grants' | 'consents' | 'sessions' | 'bus'>;
  /** The `iss` of Gatehouse's own tokens: live sessions are bound to `issuer#subject`. */
  readonly issuer: string;
  /** The longest an access token issued under a grant lives, in seconds (the revocation entries outlive it). */
  readonly accessTokenTtlSeconds: number;
  readonly clock: Clock;
  readonly events?: EventBus | undefined;
}

/** What was taken away. */
export interface AccountRevocation {
  readonly grants: number;
  readonly sessions: number;
  readonly consents: number;
}

/**
 * Takes every access a local account holds away, in the store, so it holds for every instance and every
 * process on it: its grants are revoked (refresh families dead, and each grant's revocation entry makes
 * its access tokens refused at every transport from the moment this returns — running gateways are told on
 * the cluster bus of a shared store, and otherwise read the store's revocation watermark on each request), its remembered consents are forgotten and its live
 * sessions end (a running gateway releases their upstreams when it learns of the revocation). Browser
 * sign-ins made before this stop counting through the account's own state (gone, disabled, or a newer
 * `credentialsChangedAt`), checked whenever a sign-in is used.
 */
export async function revokeAccountAccess(
  deps: AccountRevocationDeps,
  userId: string,
  why: AccountRevocationReason,
): Promise<AccountRevocation> {
  const now = deps.clock.now();
  const grantOwner = snapshotPrincipalKey({ idp: 'local', subject: userId });
  const revoked = await deps.stores.grants.revokeByPrincipal(
    grantOwner,
    now,
    now + (deps.accessTokenTtlSeconds + 60) * 1000,
  );
  const consents = await deps.stores.consents.deleteByPrincipal(grantOwner);
  const sessions = await deps.stores.sessions.deleteByPrincipal(`${deps.issuer}#${userId}`);
  await announceAccountRevocation(deps.stores.bus, sessions);
  const result = { grants: revoked.length, sessions: sessions.length, consents };
  deps.events?.emit({ type: 'account.revoked', principal: grantOwner, why, ...result });
  return result;
}

/** Tells the instances on a shared store to reload revocations and release the ended sessions' upstreams. */
async function announceAccountRevocation(
  bus: ClusterBus | undefined,
  sessions: readonly SessionRecord[],
): Promise<void> {
  if (bus === undefined) return;
  await announceRevocations(bus);
  for (const session of sessions) {
    await bus.publish({ type: 'session.ended', sessionId: session.id, reason: 'revoked' });
  }
}
