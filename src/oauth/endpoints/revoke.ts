import { tokenHash } from '../../crypto/fingerprint.js';
import { OAuthError } from '../../errors/oauth-error.js';
import type { Principal } from '../../identity/principal.js';
import type { Clock } from '../../ops/clock.js';
import type { GrantStore } from '../../stores/ports.js';
import { snapshotPrincipalKey } from '../../stores/principal-key.js';
import { type GrantContext, revokeGrant } from '../grants/context.js';
import { readForm } from './form.js';
import type { ClientAuthenticator } from './token.js';

/** Verifies an access token this server issued; rejects anything else (expired included). */
export type OwnTokenVerifier = (token: string) => Promise<Principal>;

/**
 * RFC 7009 token revocation. Revoking a refresh token revokes its whole grant, access tokens included
 * (§2.1); revoking an access token revokes that token. Unknown, expired and malformed tokens get 200
 * like any other (§2.2): the answer never tells a caller whether a token existed.
 */
export function createRevocationEndpoint(options: {
  grants: GrantContext;
  authenticateClient: ClientAuthenticator;
  verifyOwnToken: OwnTokenVerifier;
  clock: Clock;
}): (request: Request, clientAddress?: string) => Promise<Response> {
  const { grants: context, authenticateClient, verifyOwnToken, clock } = options;
  return async (request, clientAddress) => {
    const form = await readForm(request);
    const client = await authenticateClient(request, form, clientAddress);
    const token = form.get('token');
    if (token === undefined || token === '') {
      throw new OAuthError('invalid_request', { reason: 'missing_token', description: 'token is required' });
    }
    const hint = form.get('token_type_hint');
    const order = hint === 'access_token' ? [revokeAccess, revokeRefresh] : [revokeRefresh, revokeAccess];
    for (const attempt of order) {
      if (await attempt(token, client.clientId)) break;
    }
    return new Response(null, { status: 200, headers: { 'cache-control': 'no-store' } });
  };

  async function revokeRefresh(token: string, clientId: string): Promise<boolean> {
    const store: GrantStore = context.stores.grants;
    const ref = await store.findRefreshToken(tokenHash(token));
    if (ref === undefined) return false;
    const grant = await store.get(ref.grantId, clock.now());
    if (grant === undefined) return true;
    refuseOtherClient(grant.clientId, clientId);
    if (await revokeGrant(context, grant.id)) {
      context.audit.record({
        type: 'oauth.revoke.refresh_token',
        outcome: 'success',
        clientId,
        principal: snapshotPrincipalKey(grant.principal),
        grantId: grant.id,
      });
    }
    return true;
  }

  async function revokeAccess(token: string, clientId: string): Promise<boolean> {
    let principal: Principal;
    try {
      principal = await verifyOwnToken(token);
    } catch {
      return false;
    }
    refuseOtherClient(principal.clientId, clientId);
    const jti = principal.claims.jti;
    if (typeof jti !== 'string') return true;
    const now = clock.now();
    await context.revocations.revoke({
      kind: 'jti',
      id: jti,
      revokedAt: now,
      expiresAt: principal.expiresAt * 1000 + 60_000,
    });
    context.audit.record({ type: 'oauth.revoke.access_token', outcome: 'success', clientId });
    return true;
  }
}

/** RFC 7009 §2.1: a client may revoke only its own tokens. */
function refuseOtherClient(owner: string | undefined, caller: string): void {
  if (owner !== caller) {
    throw new OAuthError('unauthorized_client', {
      reason: 'token_of_another_client',
      description: 'the token was not issued to this client',
    });
  }
}
