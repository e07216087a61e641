import { tokenHash } from '../../crypto/fingerprint.js';
import { OAuthError } from '../../errors/oauth-error.js';
import { snapshotPrincipalKey } from '../../stores/principal-key.js';
import { canonicalResource } from '../authorize-request.js';
import type { ResolvedClient } from '../clients.js';
import { verifyS256 } from '../pkce.js';
import { bearerResponse, newRefreshToken, type TokenResponse } from '../tokens.js';
import { type GrantContext, revokeGrant } from './context.js';

export interface AuthorizationCodeRequest {
  readonly code: string | undefined;
  readonly redirectUri: string | undefined;
  readonly codeVerifier: string | undefined;
  readonly resource: string | undefined;
}

/**
 * RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.6) and RFC 8707. A code is consumed by its first
 * presentation, valid or not; a second presentation is a replay and revokes the grant the code created
 * (RFC 6749 §4.1.2, RFC 9700 §4.2.4).
 */
export async function exchangeAuthorizationCode(
  context: GrantContext,
  client: ResolvedClient,
  request: AuthorizationCodeRequest,
): Promise<TokenResponse> {
  const fail = (
    reason: string,
    description: string,
    code: 'invalid_grant' | 'invalid_request' | 'invalid_target' = 'invalid_grant',
  ) => {
    context.audit.record({
      type: 'oauth.token.authorization_code',
      outcome: 'failure',
      error: code,
      reason,
      clientId: client.clientId,
    });
    return new OAuthError(code, { reason, description });
  };
  if (request.code === undefined || request.code === '')
    throw fail('missing_code', 'code is required', 'invalid_request');
  if (request.codeVerifier === undefined) {
    throw fail('missing_code_verifier', 'code_verifier is required (PKCE)', 'invalid_request');
  }

  const now = context.clock.now();
  const consumed = await context.stores.codes.consume(tokenHash(request.code), now);
  if (consumed === undefined) throw fail('unknown_code', 'the authorization code is invalid or expired');
  const { record } = consumed;
  if (consumed.status === 'replayed') {
    await revokeGrant(context, record.grantId);
    context.audit.record({
      type: 'oauth.token.code_replayed',
      outcome: 'failure',
      error: 'invalid_grant',
      reason: 'code_replayed',
      clientId: client.clientId,
      principal: snapshotPrincipalKey(record.principal),
      grantId: record.grantId,
    });
    throw new OAuthError('invalid_grant', {
      reason: 'code_replayed',
      description: 'the authorization code was already used; the tokens it issued are revoked',
    });
  }
  if (record.clientId !== client.clientId)
    throw fail('client_mismatch', 'the code was issued to another client');
  if (request.redirectUri === undefined) {
    if (client.redirectUris.length !== 1) {
      throw fail('missing_redirect_uri', 'redirect_uri is required', 'invalid_request');
    }
  } else if (request.redirectUri !== record.redirectUri) {
    throw fail('redirect_uri_mismatch', 'redirect_uri differs from the authorization request');
  }
  if (!verifyS256(request.codeVerifier, record.codeChallenge)) {
    throw fail('pkce_mismatch', 'code_verifier does not match the code_challenge');
  }
  if (
    request.resource !== undefined &&
    canonicalResource(request.resource) !== canonicalResource(record.resource)
  ) {
    throw fail('resource_mismatch', 'resource differs from the authorization request', 'invalid_target');
  }

  if (!(await context.accountActive(record.principal, record.authTime))) {
    await revokeGrant(context, record.grantId);
    throw fail('account_inactive', 'the account that approved this code no longer allows it');
  }
  if (
    context.resourceAllowed !== undefined &&
    !(await context.resourceAllowed(record.resource, record.principal))
  ) {
    await revokeGrant(context, record.grantId);
    throw fail('resource_forbidden', 'this account may not hold tokens for the resource', 'invalid_target');
  }

  const issuesRefresh = client.grantTypes.includes('refresh_token');
  const refreshToken = issuesRefresh ? newRefreshToken() : undefined;
  const grant = {
    id: record.grantId,
    clientId: client.clientId,
    principal: record.principal,
    scopes: record.scopes,
    resource: record.resource,
    authTime: record.authTime,
    createdAt: now,
    expiresAt: now + context.refreshTokenTtlSeconds * 1000,
    generation: issuesRefresh ? 1 : 0,
    rotatedAt: now,
  };
  await context.stores.grants.create(grant, refreshToken === undefined ? undefined : tokenHash(refreshToken));
  // Checked again once the grant exists: an account removed while this request ran had its grants
  // revoked before this one was written, so this one is revoked here.
  if (!(await context.accountActive(record.principal, record.authTime))) {
    await revokeGrant(context, grant.id);
    throw fail('account_inactive', 'the account that approved this code no longer allows it');
  }
  const access = await context.issuer.issue(grant, grant.scopes);
  context.audit.record({
    type: 'oauth.token.issued',
    outcome: 'success',
    clientId: client.clientId,
    principal: snapshotPrincipalKey(record.principal),
    grantId: grant.id,
    detail: { grant_type: 'authorization_code', refresh: issuesRefresh },
  });
  return bearerResponse(access, grant.scopes, refreshToken);
}
