import { createRemoteJWKSet, errors, type JWTVerifyGetKey } from 'jose';
import { GatehouseError } from '../errors/gatehouse-error.js';
import type { Principal } from '../identity/principal.js';
import type { Clock } from '../ops/clock.js';
import { jwksUnavailable, type TokenVerifier, verifyJwt } from './verifier.js';

/** Asymmetric JWS algorithms a remote key set may be trusted for. HMAC and `none` are never accepted here. */
export const JWKS_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;

export type JwksAlgorithm = (typeof JWKS_ALGORITHMS)[number];

export interface JwksVerifierOptions {
  /** Shown in logs and diagnostics. */
  name: string;
  /** Where the issuer publishes its keys (`http:` or `https:`). */
  jwksUrl: string | URL;
  /** Required `iss`, compared exactly (Auth0 issuers end with `/`). */
  issuer: string;
  /** Accepted `aud` (one of). */
  audience: string | readonly string[];
  /** Accepted `alg` values; asymmetric only. */
  algorithms: readonly JwksAlgorithm[];
  /** Timeout for one key-set fetch, in milliseconds. */
  timeoutMs: number;
  /** Minimum time between refetches triggered by an unknown `kid`, in milliseconds. */
  cooldownMs: number;
  /** How long a fetched key set is trusted before it is refetched, in milliseconds. */
  cacheMaxAgeMs: number;
  /** Allowed clock skew for `exp` and `nbf`, in seconds. */
  clockToleranceSeconds: number;
  /** Time for the claim checks. Key-set freshness follows the system clock (it lives inside `jose`). */
  clock: Clock;
}

/**
 * A verifier for tokens signed by a remote issuer that publishes a JWKS (Supabase asymmetric keys,
 * WorkOS AuthKit, Auth0, Keycloak, any OIDC provider).
 *
 * Keys are fetched lazily and cached for `cacheMaxAgeMs`; a token whose `kid` is unknown triggers one
 * refetch once `cooldownMs` has passed since the last fetch, so key rotation needs no restart. A key set
 * that cannot be fetched, times out after `timeoutMs` or is not a valid JWKS rejects with
 * `GatehouseError('ERR_JWKS_UNAVAILABLE')` (503), never `invalid_token`.
 *
 * Throws `GatehouseError('ERR_CONFIG_INVALID')` at construction for a bad URL or algorithm list.
 *
 * @example
 * const verifier = createJwksVerifier({
 *   name: 'auth0', jwksUrl: 'https://tenant.eu.auth0.com/.well-known/jwks.json',
 *   issuer: 'https://tenant.eu.auth0.com/', audience: 'https://api.example', algorithms: ['RS256'],
 *   timeoutMs: 5_000, cooldownMs: 30_000, cacheMaxAgeMs: 600_000, clockToleranceSeconds: 5, clock: systemClock,
 * });
 */
export function createJwksVerifier(options: JwksVerifierOptions): TokenVerifier {
  const { name, issuer, clock, clockToleranceSeconds } = options;
  const url = parseJwksUrl(options.jwksUrl, name);
  const algorithms = checkAlgorithms(options.algorithms, name);
  const remote = createRemoteJWKSet(url, {
    timeoutDuration: options.timeoutMs,
    cooldownDuration: options.cooldownMs,
    cacheMaxAge: options.cacheMaxAgeMs,
  });

  // Only "no single key matches" is the token's fault. Everything else the resolver throws (connection
  // refused, timeout, non-200, unparseable or invalid set, an unusable key in it) is the issuer's side.
  const getKey: JWTVerifyGetKey = async (header, token) => {
    try {
      return await remote(header, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
        throw error;
      }
      throw jwksUnavailable(name, error);
    }
  };

  const checks = { name, algorithms, issuer, audience: options.audience, clockToleranceSeconds, clock };
  return { name, issuer, verify: (token: string): Promise<Principal> => verifyJwt(token, getKey, checks) };
}

function parseJwksUrl(input: string | URL, name: string): URL {
  let url: URL;
  try {
    url = new URL(input);
  } catch (cause) {
    throw new GatehouseError('ERR_CONFIG_INVALID', `The JWKS URL for "${name}" is not a valid URL.`, {
      cause,
    });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new GatehouseError('ERR_CONFIG_INVALID', `The JWKS URL for "${name}" must use http or https.`);
  }
  return url;
}

function checkAlgorithms(input: readonly string[], name: string): string[] {
  const allowed: readonly string[] = JWKS_ALGORITHMS;
  const rejected = input.filter((alg) => !allowed.includes(alg));
  if (input.length === 0 || rejected.length > 0) {
    throw new GatehouseError(
      'ERR_CONFIG_INVALID',
      `The algorithms for "${name}" must be a non-empty list of asymmetric JWS algorithms.`,
      { details: { verifier: name, rejected } },
    );
  }
  return [...input];
}
