import { tokenHash } from '../../crypto/fingerprint.js';
import { OAuthError } from '../../errors/oauth-error.js';
import type { Principal } from '../../identity/principal.js';
import type { Clock } from '../../ops/clock.js';
import type { GrantStore } from '../../stores/ports.js';
import type { RevocationList } from '../../tokens/revocation.js';
import { jsonNoStore, readForm } from './form.js';
import type { OwnTokenVerifier } from './revoke.js';
import type { ClientAuthenticator } from './token.js';

/**
 * RFC 7662 token introspection, for confidential clients only (§2.1: the endpoint MUST require
 * authentication). A client sees its own tokens; a client the operator marked as a resource server
 * (`introspection: true`) sees every token. Everything else is `{ "active": false }`.
 */
export function createIntrospectionEndpoint(options: {
  grants: GrantStore;
  revocations: RevocationList;
  authenticateClient: ClientAuthenticator;
  verifyOwnToken: OwnTokenVerifier;
  /** Clients allowed to introspect tokens issued to other clients. */
  introspectors: ReadonlySet<string>;
  issuer: string;
  clock: Clock;
}): (request: Request, clientAddress?: string) => Promise<Response> {
  const { grants, revocations, authenticateClient, verifyOwnToken, introspectors, issuer, clock } = options;
  return async (request, clientAddress) => {
    const form = await readForm(request);
    const client = await authenticateClient(request, form, clientAddress);
    if (client.tokenEndpointAuthMethod === 'none') {
      throw new OAuthError('invalid_client', {
        reason: 'public_client',
        description: 'introspection requires client authentication',
      });
    }
    const token = form.get('token');
    if (token === undefined || token === '') {
      throw new OAuthError('invalid_request', { reason: 'missing_token', description: 'token is required' });
    }
    const mayRead = (owner: string | undefined) =>
      owner === client.clientId || introspectors.has(client.clientId);

    const ref = await grants.findRefreshToken(tokenHash(token));
    if (ref !== undefined) {
      const now = clock.now();
      const grant = await grants.get(ref.grantId, now);
      if (
        grant === undefined ||
        grant.revokedAt !== undefined ||
        grant.generation !== ref.generation ||
        !mayRead(grant.clientId)
      ) {
        return jsonNoStore({ active: false });
      }
      return jsonNoStore({
        active: true,
        token_type: 'refresh_token',
        client_id: grant.clientId,
        sub: grant.principal.subject,
        scope: grant.scopes.join(' '),
        aud: grant.resource,
        iss: issuer,
        iat: Math.floor(grant.rotatedAt / 1000),
        exp: Math.floor(grant.expiresAt / 1000),
      });
    }

    let principal: Principal;
    try {
      principal = await verifyOwnToken(token);
    } catch {
      return jsonNoStore({ active: false });
    }
    await revocations.sync();
    if (revocations.isRevoked(principal.claims) || !mayRead(principal.clientId)) {
      return jsonNoStore({ active: false });
    }
    const { claims } = principal;
    return jsonNoStore({
      active: true,
      token_type: 'Bearer',
      scope: principal.scopes.join(' '),
      client_id: principal.clientId,
      sub: principal.subject,
      aud: claims.aud,
      iss: claims.iss,
      exp: claims.exp,
      iat: claims.iat,
      jti: claims.jti,
      ...(typeof claims.email === 'string' && { email: claims.email }),
    });
  };
}
