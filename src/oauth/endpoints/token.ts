import { OAuthError } from '../../errors/oauth-error.js';
import type { ResolvedClient } from '../clients.js';
import { exchangeAuthorizationCode } from '../grants/authorization-code.js';
import type { GrantContext } from '../grants/context.js';
import { refreshGrant } from '../grants/refresh-token.js';
import { exchangeToken, TOKEN_EXCHANGE_GRANT, type TokenExchangeContext } from '../grants/token-exchange.js';
import { type FormParams, jsonNoStore, readForm } from './form.js';

/** Authenticates the client of a token, revocation or introspection request (RFC 6749 §2.3). */
/**
 * Authenticates the client of an OAuth endpoint request; `clientAddress` is where the request came from
 * (a Client ID Metadata Document it needs is fetched under that address's limit).
 */
export type ClientAuthenticator = (
  request: Request,
  form: FormParams,
  clientAddress?: string,
) => Promise<ResolvedClient>;

/**
 * The token endpoint (RFC 6749 §3.2): `authorization_code`, `refresh_token` and, when `tokenExchange` is
 * given, RFC 8693 token exchange.
 */
export function createTokenEndpoint(options: {
  grants: GrantContext;
  authenticateClient: ClientAuthenticator;
  tokenExchange?: TokenExchangeContext | undefined;
}): (request: Request, clientAddress?: string) => Promise<Response> {
  const { grants, authenticateClient, tokenExchange } = options;
  return async (request, clientAddress) => {
    const form = await readForm(request, ['resource']);
    const grantType = form.get('grant_type');
    if (grantType === undefined) {
      throw new OAuthError('invalid_request', {
        reason: 'missing_grant_type',
        description: 'grant_type is required',
      });
    }
    const resources = form.getAll('resource');
    if (resources.length > 1) {
      throw new OAuthError('invalid_target', { description: 'only one resource per request is supported' });
    }
    const client = await authenticateClient(request, form, clientAddress);
    if (grantType === 'authorization_code') {
      return jsonNoStore(
        await exchangeAuthorizationCode(grants, client, {
          code: form.get('code'),
          redirectUri: form.get('redirect_uri'),
          codeVerifier: form.get('code_verifier'),
          resource: resources[0],
        }),
      );
    }
    if (grantType === 'refresh_token') {
      return jsonNoStore(
        await refreshGrant(grants, client, {
          refreshToken: form.get('refresh_token'),
          scope: form.get('scope'),
          resource: resources[0],
        }),
      );
    }
    if (grantType === TOKEN_EXCHANGE_GRANT && tokenExchange !== undefined) {
      return jsonNoStore(
        await exchangeToken(tokenExchange, client, {
          subjectToken: form.get('subject_token'),
          subjectTokenType: form.get('subject_token_type'),
          actorToken: form.get('actor_token'),
          requestedTokenType: form.get('requested_token_type'),
          audience: form.get('audience'),
          resource: resources[0],
          scope: form.get('scope'),
        }),
      );
    }
    throw new OAuthError('unsupported_grant_type', {
      description: `supported grant types: authorization_code, refresh_token${
        tokenExchange === undefined ? '' : `, ${TOKEN_EXCHANGE_GRANT}`
      }`,
    });
  };
}
