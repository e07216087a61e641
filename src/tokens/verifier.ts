import { errors, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { OAuthError } from '../errors/oauth-error.js';
import type { Principal } from '../identity/principal.js';
import type { Clock } from '../ops/clock.js';

/** Every stable `reason` an `invalid_token` rejection carries. Tests and logs use these, never message text. */
export const TOKEN_REJECTION_REASONS = [
  'malformed',
  'alg_not_allowed',
  'bad_signature',
  'unknown_kid',
  'token_expired',
  'not_yet_valid',
  'wrong_issuer',
  'wrong_audience',
  'missing_claim',
  'unknown_issuer',
  'development_token',
] as const;

export type TokenRejectionReason = (typeof TOKEN_REJECTION_REASONS)[number];

/**
 * Checks one kind of bearer token and turns it into a {@link Principal}.
 *
 * `verify` rejects with `OAuthError('invalid_token')` carrying a {@link TokenRejectionReason}, or with
 * `GatehouseError('ERR_JWKS_UNAVAILABLE')` when the keys cannot be fetched (fail closed, 503).
 */
export interface TokenVerifier {
  /** Shown in logs and diagnostics, and copied into `Principal.verifier`. */
  readonly name: string;
  /** The exact `iss` this verifier accepts; `undefined` for legacy HS256 verifiers that accept any. */
  readonly issuer: string | undefined;
  verify(token: string): Promise<Principal>;
}

/**
 * Longest token any verifier looks at, in characters (32 KiB). Larger input is refused as `malformed`
 * before it is hashed, decoded or parsed.
 */
export const MAX_TOKEN_LENGTH = 32 * 1024;

/** Builds the one error shape every token rejection uses: `invalid_token` with a stable `reason`. */
export function rejectToken(reason: TokenRejectionReason, description: string, cause?: unknown): OAuthError {
  return new OAuthError('invalid_token', { description, reason, cause });
}

/** True when `error` is an `invalid_token` rejection (optionally with the given `reason`). */
export function isTokenRejection(
  error: unknown,
  reason?: TokenRejectionReason,
): error is OAuthError & { reason: TokenRejectionReason } {
  return (
    error instanceof OAuthError &&
    error.code === 'invalid_token' &&
    (reason === undefined || error.reason === reason)
  );
}

/** Refuses input that is not a plausible compact JWT before any decoding: empty, non-string or oversized. */
export function assertTokenShape(token: unknown): asserts token is string {
  if (typeof token !== 'string' || token.length === 0) {
    throw rejectToken('malformed', 'The token is empty.');
  }
  if (token.length > MAX_TOKEN_LENGTH) {
    throw rejectToken('malformed', 'The token is too large.');
  }
}

const CLAIM_REASONS: Readonly<Record<string, TokenRejectionReason>> = {
  iss: 'wrong_issuer',
  aud: 'wrong_audience',
  nbf: 'not_yet_valid',
};

/**
 * The one mapping from `jose` errors to Gatehouse errors, shared by every verifier.
 *
 * Token problems become `OAuthError('invalid_token')` with a {@link TokenRejectionReason}; key-set
 * problems (timeout, unparseable set) become `GatehouseError('ERR_JWKS_UNAVAILABLE')`, so an IdP outage
 * is a 503 and never a 401 that clients would answer by discarding a good token. Errors that are already
 * Gatehouse or OAuth errors pass through; anything else is returned unchanged (a bug, rendered as 500).
 */
export function toVerificationError(error: unknown, verifierName: string): unknown {
  if (error instanceof OAuthError || error instanceof GatehouseError) return error;
  if (!(error instanceof errors.JOSEError)) return error;

  switch (error.code) {
    case errors.JWTExpired.code:
      return rejectToken('token_expired', 'The token has expired.', error);
    case errors.JWTClaimValidationFailed.code: {
      const { claim, reason } = error as errors.JWTClaimValidationFailed;
      if (reason === 'missing') {
        return rejectToken('missing_claim', `The token lacks the required "${claim}" claim.`, error);
      }
      const mapped = CLAIM_REASONS[claim];
      if (mapped !== undefined) {
        return rejectToken(mapped, `The token's "${claim}" claim is not accepted.`, error);
      }
      return rejectToken('malformed', `The token's "${claim}" claim or header is invalid.`, error);
    }
    case errors.JOSEAlgNotAllowed.code:
      return rejectToken(
        'alg_not_allowed',
        'The token is signed with an algorithm that is not accepted.',
        error,
      );
    case errors.JWSSignatureVerificationFailed.code:
      return rejectToken('bad_signature', 'The token signature does not verify.', error);
    case errors.JWKSNoMatchingKey.code:
    case errors.JWKSMultipleMatchingKeys.code:
      return rejectToken('unknown_kid', 'No single known key matches the token header.', error);
    case errors.JWKSTimeout.code:
    case errors.JWKSInvalid.code:
    case errors.JWKInvalid.code:
      return jwksUnavailable(verifierName, error);
    case errors.JWSInvalid.code:
    case errors.JWTInvalid.code:
    case errors.JOSENotSupported.code:
      return rejectToken('malformed', 'The token is not a well-formed signed JWT.', error);
    default:
      return error;
  }
}

/** The fail-closed error for a key set that cannot be fetched or used (503). */
export function jwksUnavailable(verifierName: string, cause: unknown): GatehouseError {
  return new GatehouseError(
    'ERR_JWKS_UNAVAILABLE',
    `The signing keys for "${verifierName}" are unavailable.`,
    {
      cause,
      details: { verifier: verifierName },
    },
  );
}

/** Options for {@link principalFromClaims}. */
export interface PrincipalFromClaimsOptions {
  /** Issuer recorded when the token has no `iss` (legacy HS256 tokens). Without it, `iss` is required. */
  fallbackIssuer?: string | undefined;
}

/**
 * Builds a {@link Principal} from claims that were already verified. `sub` and `exp` (seconds since the
 * epoch) are required; a missing or mistyped one is `invalid_token` with reason `missing_claim`.
 *
 * Scopes come from `scope` (space-separated) or `scp` (array, or a space-separated string as Entra ID
 * sends it); the client from `client_id` or `azp`.
 *
 * @example
 * const principal = principalFromClaims(payload, 'auth0');
 */
export function principalFromClaims(
  claims: Readonly<Record<string, unknown>>,
  verifierName: string,
  options: PrincipalFromClaimsOptions = {},
): Principal {
  const { sub, exp, iss } = claims;
  if (typeof sub !== 'string' || sub.length === 0) {
    throw rejectToken('missing_claim', 'The token lacks a "sub" claim.');
  }
  if (typeof exp !== 'number' || !Number.isFinite(exp)) {
    throw rejectToken('missing_claim', 'The token lacks an "exp" claim.');
  }
  const issuer = typeof iss === 'string' && iss.length > 0 ? iss : options.fallbackIssuer;
  if (issuer === undefined) {
    throw rejectToken('missing_claim', 'The token lacks an "iss" claim.');
  }

  const email = stringClaim(claims.email);
  const name = stringClaim(claims.name);
  const clientId = stringClaim(claims.client_id) ?? stringClaim(claims.azp);
  return Object.freeze({
    subject: sub,
    issuer,
    ...(email === undefined ? {} : { email }),
    ...(name === undefined ? {} : { name }),
    scopes: Object.freeze(scopesFromClaims(claims)),
    ...(clientId === undefined ? {} : { clientId }),
    claims: Object.freeze({ ...claims }),
    expiresAt: exp,
    verifier: verifierName,
  });
}

function stringClaim(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function scopesFromClaims(claims: Readonly<Record<string, unknown>>): string[] {
  const source = typeof claims.scope === 'string' ? claims.scope : claims.scp;
  if (typeof source === 'string') return source.split(' ').filter((scope) => scope.length > 0);
  if (Array.isArray(source)) {
    return source.filter((scope): scope is string => typeof scope === 'string' && scope.length > 0);
  }
  return [];
}

/** The checks every verifier pins; only the key, algorithms and issuer rules differ between them. */
export interface JwtChecks {
  /** Verifier name, for the principal and for errors. */
  name: string;
  algorithms: readonly string[];
  /** Required `iss`; omitted only for legacy HS256 tokens, which then get `fallbackIssuer`. */
  issuer?: string | undefined;
  fallbackIssuer?: string | undefined;
  audience: string | readonly string[];
  /** Required `typ` header, when the token type is fixed (RFC 9068 `at+jwt`). */
  typ?: string | undefined;
  clockToleranceSeconds: number;
  clock: Clock;
}

/**
 * Verifies signature, algorithm, issuer, audience, `exp` (required) and `nbf` with `jose`, then builds the
 * principal. Every failure is mapped by {@link toVerificationError}.
 */
export async function verifyJwt(token: string, key: JWTVerifyGetKey, checks: JwtChecks): Promise<Principal> {
  assertTokenShape(token);
  try {
    const { payload } = await jwtVerify(token, key, {
      algorithms: [...checks.algorithms],
      audience: typeof checks.audience === 'string' ? checks.audience : [...checks.audience],
      ...(checks.issuer === undefined ? {} : { issuer: checks.issuer }),
      ...(checks.typ === undefined ? {} : { typ: checks.typ }),
      requiredClaims: ['sub', 'exp'],
      clockTolerance: checks.clockToleranceSeconds,
      currentDate: new Date(checks.clock.now()),
    });
    return principalFromClaims(payload, checks.name, { fallbackIssuer: checks.fallbackIssuer });
  } catch (error) {
    throw toVerificationError(error, checks.name);
  }
}
