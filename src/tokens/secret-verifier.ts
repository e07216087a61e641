import { GatehouseError } from '../errors/gatehouse-error.js';
import type { Principal } from '../identity/principal.js';
import type { Clock } from '../ops/clock.js';
import { type TokenVerifier, verifyJwt } from './verifier.js';

/** Shortest accepted shared secret, in bytes (RFC 7518 §3.2: an HS256 key must be at least 256 bits). */
export const MIN_SECRET_BYTES = 32;

export interface SecretVerifierOptions {
  /** Shown in logs and diagnostics; also names the fallback issuer `urn:gatehouse:hs256:<name>`. */
  name: string;
  /** The shared secret, used as its UTF-8 bytes (Supabase: the project's legacy JWT secret). At least 32 bytes. */
  secret: string;
  /** Required `iss`, compared exactly. Omit for legacy projects whose tokens are routed here by elimination. */
  issuer?: string | undefined;
  /** Accepted `aud` (one of). Supabase: `authenticated`. */
  audience: string | readonly string[];
  /** Allowed clock skew for `exp` and `nbf`, in seconds. */
  clockToleranceSeconds: number;
  clock: Clock;
}

/**
 * A verifier for tokens signed with a shared secret, HS256 only (Supabase legacy projects). Any other
 * `alg` — including `none` and every asymmetric algorithm — is rejected with `alg_not_allowed`.
 *
 * Throws `GatehouseError('ERR_KEY_INVALID')` at construction when the secret is shorter than 32 bytes.
 *
 * @example
 * const verifier = createSecretVerifier({
 *   name: 'supabase', secret, audience: 'authenticated', clockToleranceSeconds: 5, clock: systemClock,
 * });
 */
export function createSecretVerifier(options: SecretVerifierOptions): TokenVerifier {
  const { name, issuer, clock, clockToleranceSeconds } = options;
  const key = new TextEncoder().encode(options.secret);
  if (key.byteLength < MIN_SECRET_BYTES) {
    throw new GatehouseError(
      'ERR_KEY_INVALID',
      `The HS256 secret for "${name}" is ${key.byteLength} bytes; at least ${MIN_SECRET_BYTES} are required.`,
      { details: { verifier: name, length: key.byteLength } },
    );
  }
  // A static key as a resolver, so all verifiers share one verification path.
  const getKey = async () => key;
  const checks = {
    name,
    algorithms: ['HS256'],
    issuer,
    fallbackIssuer: issuer ?? `urn:gatehouse:hs256:${name}`,
    audience: options.audience,
    clockToleranceSeconds,
    clock,
  };
  return { name, issuer, verify: (token: string): Promise<Principal> => verifyJwt(token, getKey, checks) };
}
