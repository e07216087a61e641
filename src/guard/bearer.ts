import { OAuthError } from '../errors/oauth-error.js';
import type { Principal } from '../identity/principal.js';
import { MISSING_TOKEN_REASON } from './challenge.js';

/** What the guard needs from the token layer: verify a bearer token, saying whether the cache answered. */
export interface BearerVerifier {
  verify(token: string): Promise<{ principal: Principal; cacheHit: boolean }>;
}

export interface Authenticated {
  readonly principal: Principal;
  readonly cacheHit: boolean;
}

// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

/**
 * Authenticates a request from its `Authorization` header only (tokens in query strings are refused by
 * the MCP authorization spec). Throws `OAuthError`: `invalid_token` (401) for anything not a valid token,
 * `invalid_request` (400) for a malformed header, `insufficient_scope` (403) when scopes are missing.
 */
export async function authenticate(
  authorization: string | undefined,
  verifier: BearerVerifier,
  requiredScopes: readonly string[],
): Promise<Authenticated> {
  if (authorization === undefined || authorization.trim() === '') {
    throw new OAuthError('invalid_token', {
      reason: MISSING_TOKEN_REASON,
      description: 'authorization required',
    });
  }
  const match = BEARER.exec(authorization.trim());
  if (match === null) {
    if (!/^Bearer\s/i.test(authorization.trim())) {
      throw new OAuthError('invalid_token', {
        reason: MISSING_TOKEN_REASON,
        description: 'only the Bearer scheme is supported',
      });
    }
    throw new OAuthError('invalid_request', {
      reason: 'malformed_header',
      description: 'malformed Bearer header',
    });
  }
  const { principal, cacheHit } = await verifier.verify(match[1] as string);
  const missing = requiredScopes.filter((scope) => !principal.scopes.includes(scope));
  if (missing.length > 0) {
    throw new OAuthError('insufficient_scope', {
      description: `token lacks scope: ${missing.join(' ')}`,
      scope: [...new Set([...principal.scopes, ...requiredScopes])],
      reason: 'insufficient_scope',
    });
  }
  return { principal, cacheHit };
}
