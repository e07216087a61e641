import { jwtVerify } from 'jose';
import type { Principal } from '../identity/principal.js';
import type { Clock } from '../ops/clock.js';
import { type KeyStore, SIGNING_ALGORITHM } from './keys.js';
import { ACCESS_TOKEN_TYPE } from './sign.js';
import {
  assertTokenShape,
  principalFromClaims,
  type TokenVerifier,
  toVerificationError,
} from './verifier.js';

export interface LocalVerifierOptions {
  keys: KeyStore;
  /** Required `iss`: the issuer the signer uses. */
  issuer: string;
  /** Accepted `aud` (one of): the resource URL(s) tokens are bound to. */
  audience: string | readonly string[];
  /** Allowed clock skew for `exp` and `nbf`, in seconds. */
  clockToleranceSeconds: number;
  clock: Clock;
  /** Shown in logs and diagnostics. Default `gatehouse`. */
  name?: string | undefined;
}

/**
 * A verifier for the access tokens Gatehouse signs itself: ES256 only, `typ: at+jwt` required
 * (RFC 9068 §4), key chosen by `kid` from the key store. A token of another `typ` (for example an
 * identity token minted for an upstream) is rejected as `malformed`.
 *
 * @example
 * const verifier = createLocalVerifier({ keys, issuer, audience: `${issuer}/mcp`, clockToleranceSeconds: 5, clock });
 */
export function createLocalVerifier(options: LocalVerifierOptions): TokenVerifier {
  const { keys, issuer, clock, clockToleranceSeconds } = options;
  const name = options.name ?? 'gatehouse';
  const audience = typeof options.audience === 'string' ? options.audience : [...options.audience];

  return {
    name,
    issuer,
    async verify(token: string): Promise<Principal> {
      assertTokenShape(token);
      try {
        const { payload } = await jwtVerify(token, keys.verificationKeys(), {
          algorithms: [SIGNING_ALGORITHM],
          typ: ACCESS_TOKEN_TYPE,
          issuer,
          audience,
          requiredClaims: ['sub', 'exp'],
          clockTolerance: clockToleranceSeconds,
          currentDate: new Date(clock.now()),
        });
        return principalFromClaims(payload, name);
      } catch (error) {
        throw toVerificationError(error, name);
      }
    },
  };
}
