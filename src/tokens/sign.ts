import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { type Clock, epochSeconds } from '../ops/clock.js';
import type { KeyStore } from './keys.js';

/** The `typ` header of Gatehouse access tokens (RFC 9068 §2.1). */
export const ACCESS_TOKEN_TYPE = 'at+jwt';

/**
 * The `typ` header of identity tokens Gatehouse mints for other services (HTTP upstreams, token exchange).
 * Anything but `at+jwt`, so the local verifier (which requires `at+jwt`) never accepts one at the MCP
 * endpoint even if its audience matched (RFC 8725 §3.11, explicit typing).
 */
export const IDENTITY_TOKEN_TYPE = 'JWT';

/** Claims the signer sets itself; passing one in `claims` is a programming error. */
const REGISTERED_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti']);

export interface TokenSignerOptions {
  keys: KeyStore;
  /** `iss` of every token signed. */
  issuer: string;
  /** Source of `iat` and `exp`. */
  clock: Clock;
}

export interface SignInput {
  /** `sub`. */
  subject: string;
  /** `aud` (RFC 8707: the resource the token is bound to). */
  audience: string | readonly string[];
  /** Lifetime, in seconds from now; a positive integer. */
  expiresInSeconds: number;
  /** Extra claims (`scope`, `client_id`, …). Registered claims (`iss`, `sub`, `aud`, `exp`, `iat`, `nbf`, `jti`) are refused. */
  claims?: Readonly<Record<string, unknown>> | undefined;
  /** `jti`. Default: 128 random bits, base64url. */
  jti?: string | undefined;
  /** The `typ` header. Default `at+jwt` ({@link ACCESS_TOKEN_TYPE}); tokens for other services use {@link IDENTITY_TOKEN_TYPE}. */
  type?: string | undefined;
}

export interface TokenSigner {
  /** Signs a token with the newest key: header `{ alg: 'ES256', typ, kid }` (`typ` default `at+jwt`). */
  sign(input: SignInput): Promise<string>;
}

/**
 * Signs Gatehouse's own access tokens with the key store's newest key.
 *
 * @example
 * const signer = createTokenSigner({ keys, issuer: 'https://gatehouse.example', clock: systemClock });
 * const token = await signer.sign({ subject: 'user-1', audience: 'https://gatehouse.example/mcp', expiresInSeconds: 3600 });
 */
export function createTokenSigner(options: TokenSignerOptions): TokenSigner {
  const { keys, issuer, clock } = options;
  return {
    async sign(input: SignInput): Promise<string> {
      if (!Number.isInteger(input.expiresInSeconds) || input.expiresInSeconds <= 0) {
        throw new TypeError('expiresInSeconds must be a positive integer');
      }
      const claims = input.claims ?? {};
      const reserved = Object.keys(claims).filter((claim) => REGISTERED_CLAIMS.has(claim));
      if (reserved.length > 0) {
        throw new TypeError(`claims must not set registered claims: ${reserved.join(', ')}`);
      }
      const { kid, alg, privateKey } = keys.signingKey();
      const now = epochSeconds(clock);
      const audience = typeof input.audience === 'string' ? input.audience : [...input.audience];
      return new SignJWT({ ...claims })
        .setProtectedHeader({ alg, typ: input.type ?? ACCESS_TOKEN_TYPE, kid })
        .setIssuer(issuer)
        .setSubject(input.subject)
        .setAudience(audience)
        .setIssuedAt(now)
        .setExpirationTime(now + input.expiresInSeconds)
        .setJti(input.jti ?? randomBytes(16).toString('base64url'))
        .sign(privateKey);
    },
  };
}
