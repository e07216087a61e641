import { OAuthError } from '../errors/oauth-error.js';
import type { Principal } from '../identity/principal.js';
import type { Clock } from '../ops/clock.js';
import { type KeyStore, SIGNING_ALGORITHM } from './keys.js';
import { ACCESS_TOKEN_TYPE, type IDENTITY_TOKEN_TYPE } from './sign.js';
import { type TokenVerifier, verifyJwt } from './verifier.js';

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
  /**
   * Required `typ`. Default `at+jwt` (access tokens); `JWT` verifies the identity tokens Gatehouse mints
   * for an upstream (the token-exchange grant accepts those as subject tokens).
   */
  typ?: typeof ACCESS_TOKEN_TYPE | typeof IDENTITY_TOKEN_TYPE | undefined;
  /**
   * Refuse development tokens (`gatehouse token`, claim {@link DEVELOPMENT_TOKEN_CLAIM}) as
   * `invalid_token` with reason `development_token`. Default false; production mode sets it, so a token
   * minted on a development checkout of the same data directory never opens a production gateway.
   */
  refuseDevelopmentTokens?: boolean | undefined;
}

/** The claim `gatehouse token` sets on the development tokens it mints. */
export const DEVELOPMENT_TOKEN_CLAIM = 'gatehouse_dev';

/** The `reason` of the `invalid_token` rejection of a development token. */
export const DEVELOPMENT_TOKEN_REASON = 'development_token';

/**
 * A verifier for the access tokens Gatehouse signs itself: ES256 only, `typ: at+jwt` required
 * (RFC 9068 §4), key chosen by `kid` from the key store. A token of another `typ` (for example an
 * identity token minted for an upstream) is rejected as `malformed`. With `refuseDevelopmentTokens`, a
 * token carrying `gatehouse_dev` is rejected as `development_token`, after its signature checked out.
 *
 * @example
 * const verifier = createLocalVerifier({ keys, issuer, audience: `${issuer}/mcp`, clockToleranceSeconds: 5, clock });
 */
export function createLocalVerifier(options: LocalVerifierOptions): TokenVerifier {
  const { keys, issuer, clock, clockToleranceSeconds } = options;
  const name = options.name ?? 'gatehouse';
  const checks = {
    name,
    algorithms: [SIGNING_ALGORITHM],
    typ: options.typ ?? ACCESS_TOKEN_TYPE,
    issuer,
    audience: options.audience,
    clockToleranceSeconds,
    clock,
  };
  return {
    name,
    issuer,
    async verify(token: string): Promise<Principal> {
      const principal = await verifyJwt(token, keys.verificationKeys(), checks);
      const marker = principal.claims[DEVELOPMENT_TOKEN_CLAIM];
      if (options.refuseDevelopmentTokens === true && marker !== undefined && marker !== false) {
        throw new OAuthError('invalid_token', {
          description: 'Development tokens are not accepted in production mode.',
          reason: DEVELOPMENT_TOKEN_REASON,
        });
      }
      return principal;
    },
  };
}
