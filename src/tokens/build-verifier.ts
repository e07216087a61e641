import type { GatehouseConfig, VerifierConfig } from '../config/schema.js';
import type { Clock } from '../ops/clock.js';
import { createJwksVerifier } from './jwks-verifier.js';
import { createSecretVerifier } from './secret-verifier.js';
import type { TokenVerifier } from './verifier.js';

/**
 * Builds the verifier one `auth.verifiers` entry describes: the gateway's and `gatehouse doctor`'s. The
 * configuration holds its secrets (`loadConfig` read every `secretFile`), so this never fails for one.
 */
export function buildVerifier(
  verifier: VerifierConfig,
  config: GatehouseConfig,
  clock: Clock,
): TokenVerifier {
  const clockToleranceSeconds = config.auth.clockToleranceSeconds;
  if (verifier.kind === 'hs256') {
    return createSecretVerifier({
      name: verifier.name,
      secret: verifier.secret,
      issuer: verifier.issuer,
      audience: verifier.audience,
      clockToleranceSeconds,
      clock,
    });
  }
  return createJwksVerifier({
    name: verifier.name,
    jwksUrl: verifier.jwksUrl,
    issuer: verifier.issuer,
    audience: verifier.audience,
    algorithms: verifier.algorithms,
    timeoutMs: verifier.timeoutMs,
    cooldownMs: verifier.cooldownMs,
    cacheMaxAgeMs: verifier.cacheMaxAgeMs,
    clockToleranceSeconds,
    clock,
  });
}
