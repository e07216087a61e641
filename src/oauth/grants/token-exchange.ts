import {
  type AudienceTokenMinter,
  type MintedToken,
  SUPABASE_AUTHENTICATED,
  type SupabaseTokenMinter,
} from '../../downstream/minted-token.js';
import { OAuthError } from '../../errors/oauth-error.js';
import type { Principal } from '../../identity/principal.js';
import type { Audit } from '../../ops/audit.js';
import type { PrincipalSnapshot } from '../../stores/ports.js';
import type { RevocationList } from '../../tokens/revocation.js';
import type { ResolvedClient } from '../clients.js';

/** RFC 8693 §2.1 `grant_type`. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 8693 §3 token type identifiers this server understands. */
export const ACCESS_TOKEN_TYPE_URN = 'urn:ietf:params:oauth:token-type:access_token';
export const JWT_TYPE_URN = 'urn:ietf:params:oauth:token-type:jwt';

/** What the token-exchange grant needs; present only when the grant is enabled. */
export interface TokenExchangeContext {
  /** Targets tokens may be exchanged for, compared exactly. Never empty. */
  readonly audiences: ReadonlySet<string>;
  /** Client ids allowed to exchange (each confidential). */
  readonly clients: ReadonlySet<string>;
  /** Lifetime of an exchanged token, in seconds. */
  readonly ttlSeconds: number;
  /** Verifies a Gatehouse access token (signature, `typ`, issuer, audience, expiry). */
  readonly verifySubjectToken: (token: string) => Promise<Principal>;
  /**
   * Verifies an identity token Gatehouse minted for its HTTP upstream (`typ` `JWT`, that upstream's
   * audience), accepted as a `jwt` subject token. Absent: only access tokens are accepted.
   */
  readonly verifyIdentityToken?: ((token: string) => Promise<Principal>) | undefined;
  /** Issues the token for the `authenticated` audience (Supabase's) when configured. */
  readonly supabaseMinter?: SupabaseTokenMinter | undefined;
  readonly revocations: RevocationList;
  /** Whether a local account still exists and is enabled (federated users: always true). */
  readonly accountActive: (principal: PrincipalSnapshot) => Promise<boolean>;
  readonly minter: AudienceTokenMinter;
  readonly audit: Audit;
}

export interface TokenExchangeRequest {
  readonly subjectToken: string | undefined;
  readonly subjectTokenType: string | undefined;
  readonly actorToken: string | undefined;
  readonly requestedTokenType: string | undefined;
  readonly audience: string | undefined;
  readonly resource: string | undefined;
  readonly scope: string | undefined;
}

/** RFC 8693 §2.2.1 successful response. */
export interface TokenExchangeResponse {
  readonly access_token: string;
  readonly issued_token_type: string;
  /** `Bearer` for an access token; `N_A` when a plain JWT was asked for (RFC 8693 §2.2.1). */
  readonly token_type: 'Bearer' | 'N_A';
  readonly expires_in: number;
  readonly scope?: string;
}

/**
 * RFC 8693 impersonation: a confidential client presents a user's Gatehouse access token (or, as a `jwt`,
 * the identity token Gatehouse minted for its HTTP upstream) and receives a short-lived token for one
 * allowed audience, with the same or fewer scopes; for `authenticated`, a Supabase user token. No refresh token is issued;
 * delegation (`actor_token`) is not supported. Failures follow §2.2.2: `invalid_request`, `invalid_target`
 * (audience not allowed), `invalid_grant` (subject token invalid, expired or revoked), `invalid_scope`.
 */
export async function exchangeToken(
  context: TokenExchangeContext,
  client: ResolvedClient,
  request: TokenExchangeRequest,
): Promise<TokenExchangeResponse> {
  const fail = (
    code: 'invalid_request' | 'invalid_target' | 'invalid_grant' | 'invalid_scope' | 'invalid_client',
    reason: string,
    description: string,
    principal?: Principal,
  ): OAuthError => {
    context.audit.record({
      type: 'oauth.token.exchange',
      outcome: 'failure',
      error: code,
      reason,
      clientId: client.clientId,
      ...(principal === undefined ? {} : { principal: `${principal.issuer}#${principal.subject}` }),
    });
    return new OAuthError(code, { reason, description });
  };

  // A public client cannot be held to account for what it exchanges (RFC 8693 §5): confidential only.
  if (client.tokenEndpointAuthMethod === 'none' || !context.clients.has(client.clientId)) {
    throw fail('invalid_client', 'exchange_not_allowed', 'this client may not exchange tokens');
  }
  if (request.subjectToken === undefined || request.subjectToken === '') {
    throw fail('invalid_request', 'missing_subject_token', 'subject_token is required');
  }
  const verifySubject =
    request.subjectTokenType === ACCESS_TOKEN_TYPE_URN
      ? context.verifySubjectToken
      : request.subjectTokenType === JWT_TYPE_URN
        ? context.verifyIdentityToken
        : undefined;
  if (verifySubject === undefined) {
    throw fail(
      'invalid_request',
      'unsupported_subject_token_type',
      context.verifyIdentityToken === undefined
        ? `subject_token_type must be ${ACCESS_TOKEN_TYPE_URN}`
        : `subject_token_type must be ${ACCESS_TOKEN_TYPE_URN} or ${JWT_TYPE_URN}`,
    );
  }
  if (request.actorToken !== undefined) {
    throw fail('invalid_request', 'actor_token_unsupported', 'delegation (actor_token) is not supported');
  }
  const requestedType = request.requestedTokenType ?? ACCESS_TOKEN_TYPE_URN;
  if (requestedType !== ACCESS_TOKEN_TYPE_URN && requestedType !== JWT_TYPE_URN) {
    throw fail(
      'invalid_request',
      'unsupported_requested_token_type',
      `requested_token_type must be ${ACCESS_TOKEN_TYPE_URN} or ${JWT_TYPE_URN}`,
    );
  }
  if (
    request.audience !== undefined &&
    request.resource !== undefined &&
    request.audience !== request.resource
  ) {
    throw fail('invalid_target', 'multiple_targets', 'name one target: audience and resource differ');
  }
  const audience = request.audience ?? request.resource;
  if (audience === undefined || audience === '') {
    throw fail('invalid_request', 'missing_audience', 'audience (or resource) is required');
  }
  if (!context.audiences.has(audience)) {
    throw fail('invalid_target', 'audience_not_allowed', 'tokens cannot be exchanged for this audience');
  }

  let principal: Principal;
  try {
    principal = await verifySubject(request.subjectToken);
  } catch (error) {
    if (error instanceof OAuthError) {
      throw fail('invalid_grant', `subject_${error.reason ?? 'invalid'}`, 'the subject token is invalid');
    }
    throw error;
  }
  await context.revocations.sync();
  if (context.revocations.isRevoked(principal.claims)) {
    throw fail('invalid_grant', 'subject_revoked', 'the subject token has been revoked', principal);
  }
  const idp = typeof principal.claims.idp === 'string' ? principal.claims.idp : undefined;
  if (idp !== undefined && !(await context.accountActive({ idp, subject: principal.subject }))) {
    throw fail(
      'invalid_grant',
      'account_inactive',
      'the account behind the subject token is gone or disabled',
      principal,
    );
  }

  let scopes = principal.scopes;
  if (request.scope !== undefined) {
    const requested = [...new Set(request.scope.split(' ').filter((scope) => scope !== ''))];
    if (requested.some((scope) => !principal.scopes.includes(scope))) {
      throw fail('invalid_scope', 'scope_widened', 'scope exceeds the subject token', principal);
    }
    scopes = requested;
  }

  // Supabase's audience gets Supabase's token shape (no scope: its policies look at `role` and `sub`).
  const supabase = audience === SUPABASE_AUTHENTICATED ? context.supabaseMinter : undefined;
  if (supabase === undefined && audience === SUPABASE_AUTHENTICATED) {
    throw fail('invalid_target', 'audience_not_configured', 'this audience is not configured', principal);
  }
  const minted: MintedToken =
    supabase !== undefined
      ? await supabase.mint(principal)
      : await context.minter.mint(principal, {
          audience,
          ttlSeconds: context.ttlSeconds,
          scope: scopes,
          // RFC 8693 §4.3: the client that asked for the token.
          claims: { client_id: client.clientId },
        });
  context.audit.record({
    type: 'oauth.token.exchange',
    outcome: 'success',
    clientId: client.clientId,
    principal: `${principal.issuer}#${principal.subject}`,
    detail: { audience, expiresIn: minted.expiresIn },
  });
  const isAccessToken = requestedType === ACCESS_TOKEN_TYPE_URN;
  return {
    access_token: minted.token,
    issued_token_type: requestedType,
    token_type: isAccessToken ? 'Bearer' : 'N_A',
    expires_in: minted.expiresIn,
    ...(supabase === undefined && scopes.length > 0 && { scope: scopes.join(' ') }),
  };
}
