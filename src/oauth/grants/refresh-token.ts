import { tokenHash } from '../../crypto/fingerprint.js';
import { SealError, sealerFromSecret } from '../../crypto/seal.js';
import { OAuthError } from '../../errors/oauth-error.js';
import type { GrantRecord } from '../../stores/ports.js';
import { snapshotPrincipalKey } from '../../stores/principal-key.js';
import { canonicalResource } from '../authorize-request.js';
import type { ResolvedClient } from '../clients.js';
import { bearerResponse, newRefreshToken, type TokenResponse } from '../tokens.js';
import { type GrantContext, revokeGrant } from './context.js';

export interface RefreshRequest {
  readonly refreshToken: string | undefined;
  readonly scope: string | undefined;
  readonly resource: string | undefined;
}

const GRACE_PURPOSE = 'gatehouse refresh grace response';
/** Rotation attempts before giving up under contention (each loser re-reads the grant once). */
const MAX_ATTEMPTS = 3;

/**
 * RFC 6749 §6 with rotation on every use (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2):
 * - the current refresh token rotates the family by compare-and-swap, so of two concurrent uses of
 *   one token exactly one mints a new pair;
 * - the token just replaced, presented again within the grace window (a retry, or the loser of that
 *   race), gets the identical response — sealed with a key derived from that very token, so the store
 *   holds nothing usable without it;
 * - any other former token is a reuse: the whole family is revoked, access tokens included.
 */
export async function refreshGrant(
  context: GrantContext,
  client: ResolvedClient,
  request: RefreshRequest,
): Promise<TokenResponse> {
  const failure = (
    reason: string,
    description: string,
    code: 'invalid_grant' | 'invalid_request' | 'invalid_scope' | 'invalid_target' = 'invalid_grant',
  ) => {
    context.audit.record({
      type: 'oauth.token.refresh',
      outcome: 'failure',
      error: code,
      reason,
      clientId: client.clientId,
    });
    return new OAuthError(code, { reason, description });
  };
  const presented = request.refreshToken;
  if (presented === undefined || presented === '')
    throw failure('missing_refresh_token', 'refresh_token is required', 'invalid_request');
  if (!client.grantTypes.includes('refresh_token')) {
    throw new OAuthError('unauthorized_client', {
      description: 'the client is not registered for the refresh_token grant',
    });
  }

  const ref = await context.stores.grants.findRefreshToken(tokenHash(presented));
  if (ref === undefined) throw failure('unknown_refresh_token', 'the refresh token is invalid');

  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
    const now = context.clock.now();
    const grant = await context.stores.grants.get(ref.grantId, now);
    if (grant === undefined) throw failure('grant_expired', 'the refresh token has expired');
    // A token presented by another client than its own is refused without touching the family: the
    // presenter may be the attacker, but may equally be a confused client; either way it learns nothing.
    if (grant.clientId !== client.clientId)
      throw failure('client_mismatch', 'the refresh token was issued to another client');
    if (grant.revokedAt !== undefined) throw failure('grant_revoked', 'the refresh token has been revoked');
    if (!(await context.accountActive(grant.principal, grant.authTime))) {
      // Removed, disabled or re-passworded since the sign-in: nothing more comes of this grant.
      await revokeGrant(context, grant.id);
      throw failure('account_inactive', 'the account behind this grant no longer allows it');
    }
    if (
      context.resourceAllowed !== undefined &&
      !(await context.resourceAllowed(grant.resource, grant.principal))
    ) {
      // An administrator's role was removed: the admin grant ends with it.
      await revokeGrant(context, grant.id);
      throw failure(
        'resource_forbidden',
        'this account may no longer hold tokens for the resource',
        'invalid_target',
      );
    }

    const scopes = narrowScopes(grant, request.scope);
    if (scopes === undefined)
      throw failure('scope_widened', 'scope exceeds the original grant', 'invalid_scope');
    if (
      request.resource !== undefined &&
      canonicalResource(request.resource) !== canonicalResource(grant.resource)
    ) {
      throw failure('resource_mismatch', 'resource differs from the original grant', 'invalid_target');
    }

    if (ref.generation === grant.generation) {
      const next = newRefreshToken();
      const access = await context.issuer.issue(grant, scopes);
      const response = bearerResponse(access, scopes, next);
      const sealed = sealerFromSecret(presented, GRACE_PURPOSE).seal(
        JSON.stringify(response),
        graceContext(grant.id, ref.generation),
      );
      const rotated = await context.stores.grants.rotate(
        grant.id,
        grant.generation,
        tokenHash(next),
        now,
        sealed,
      );
      if (rotated !== undefined) {
        context.audit.record({
          type: 'oauth.token.issued',
          outcome: 'success',
          clientId: client.clientId,
          principal: snapshotPrincipalKey(grant.principal),
          grantId: grant.id,
          detail: { grant_type: 'refresh_token', generation: rotated.generation },
        });
        return response;
      }
      continue; // another request rotated this generation first: re-read and answer as its retry
    }

    const withinGrace =
      ref.generation === grant.generation - 1 &&
      grant.graceResponse !== undefined &&
      now - grant.rotatedAt <= context.refreshGraceSeconds * 1000;
    if (withinGrace && grant.graceResponse !== undefined) {
      try {
        const replay = JSON.parse(
          sealerFromSecret(presented, GRACE_PURPOSE).open(
            grant.graceResponse,
            graceContext(grant.id, ref.generation),
          ),
        ) as TokenResponse;
        context.audit.record({
          type: 'oauth.token.refresh_retried',
          outcome: 'success',
          clientId: client.clientId,
          grantId: grant.id,
        });
        return replay;
      } catch (error) {
        if (!(error instanceof SealError)) throw error;
        // Cannot happen for the genuine previous token; treat like any other reuse.
      }
    }

    await revokeGrant(context, grant.id);
    context.audit.record({
      type: 'oauth.token.refresh_reuse',
      outcome: 'failure',
      error: 'invalid_grant',
      reason: 'refresh_token_reused',
      clientId: client.clientId,
      principal: snapshotPrincipalKey(grant.principal),
      grantId: grant.id,
      detail: { presentedGeneration: ref.generation, currentGeneration: grant.generation },
    });
    throw new OAuthError('invalid_grant', {
      reason: 'refresh_token_reused',
      description: 'the refresh token was already used; the grant is revoked',
    });
  }
  throw new OAuthError('temporarily_unavailable', { description: 'refresh contention; retry' });
}

function graceContext(grantId: string, generation: number): string {
  return `${grantId}#${generation}`;
}

/** RFC 6749 §6: a refresh may ask for fewer scopes, never more. */
function narrowScopes(grant: GrantRecord, requested: string | undefined): string[] | undefined {
  if (requested === undefined) return [...grant.scopes];
  const names = [...new Set(requested.split(' ').filter((value) => value !== ''))];
  return names.every((name) => grant.scopes.includes(name)) ? names : undefined;
}
