import type { GatehouseConfig, VerifierConfig } from '../config/schema.js';
import type { Clock } from '../ops/clock.js';
import { createJwksVerifier } from './jwks-verifier.js';
import type { KeyStore } from './keys.js';
import { createLocalVerifier } from './local-verifier.js';
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

/**
 * The verifiers a request's token meets at the gateway, in the gateway's order: Gatehouse's own keys
 * first (refusing development tokens in production), then every `auth.verifiers` entry. The gateway and
 * `gatehouse doctor --token` build them here, so both judge a token alike.
 */
export function gatewayVerifiers(
  config: GatehouseConfig,
  own: { readonly keys: KeyStore; readonly issuer: string; readonly audience: string } | undefined,
  clock: Clock,
): { readonly local: TokenVerifier | undefined; readonly all: TokenVerifier[] } {
  const local =
    own === undefined
      ? undefined
      : createLocalVerifier({
          keys: own.keys,
          issuer: own.issuer,
          audience: own.audience,
          clockToleranceSeconds: config.auth.clockToleranceSeconds,
          refuseDevelopmentTokens: config.mode === 'production',
          clock,
        });
  const external = config.auth.verifiers.map((verifier) => buildVerifier(verifier, config, clock));
  return { local, all: local === undefined ? external : [local, ...external] };
}
