import { randomBytes } from 'node:crypto';
import type { GrantRecord } from '../stores/ports.js';
import { GRANT_CLAIM } from '../tokens/revocation.js';
import type { TokenSigner } from '../tokens/sign.js';

/** RFC 6749 §5.1 successful token response. */
export interface TokenResponse {
  readonly access_token: string;
  readonly token_type: 'Bearer';
  readonly expires_in: number;
  /** Granted scopes (RFC 6749 §5.1); absent when none were granted. */
  readonly scope?: string;
  readonly refresh_token?: string;
}

/** The RFC 6749 §5.1 answer for an issued access token (and the refresh token that came with it). */
export function bearerResponse(
  access: { token: string; expiresIn: number },
  scopes: readonly string[],
  refreshToken?: string,
): TokenResponse {
  return {
    access_token: access.token,
    token_type: 'Bearer',
    expires_in: access.expiresIn,
    ...(scopes.length > 0 && { scope: scopes.join(' ') }),
    ...(refreshToken !== undefined && { refresh_token: refreshToken }),
  };
}

/** Prefixes make leaked tokens recognisable to secret scanners; the rest is 256 random bits. */
export const newRefreshToken = (): string => `ghr_${randomBytes(32).toString('base64url')}`;
export const newAuthorizationCode = (): string => `ghc_${randomBytes(32).toString('base64url')}`;
export const newId = (prefix: string): string => `${prefix}_${randomBytes(16).toString('base64url')}`;

/** Claims that identity mapping may never set: the registered ones and those this server owns. */
const RESERVED = new Set([
  'iss',
  'sub',
  'aud',
  'exp',
  'iat',
  'nbf',
  'jti',
  'scope',
  'client_id',
  'auth_time',
  GRANT_CLAIM,
]);

export interface AccessTokenIssuer {
  /** Signs an RFC 9068 access token for `grant`, bound to its resource, with `scopes` (⊆ the grant's). */
  issue(grant: GrantRecord, scopes: readonly string[]): Promise<{ token: string; expiresIn: number }>;
}

export function createAccessTokenIssuer(options: {
  signer: TokenSigner;
  ttlSeconds: number;
}): AccessTokenIssuer {
  const { signer, ttlSeconds } = options;
  return {
    async issue(grant, scopes) {
      const { principal } = grant;
      const extra = Object.fromEntries(
        Object.entries(principal.claims ?? {}).filter(([name]) => !RESERVED.has(name)),
      );
      const token = await signer.sign({
        subject: principal.subject,
        audience: grant.resource,
        expiresInSeconds: ttlSeconds,
        claims: {
          ...extra,
          ...(principal.email !== undefined && { email: principal.email }),
          ...(principal.name !== undefined && { name: principal.name }),
          idp: principal.idp,
          client_id: grant.clientId,
          scope: scopes.join(' '),
          auth_time: Math.floor(grant.authTime / 1000),
          [GRANT_CLAIM]: grant.id,
        },
      });
      return { token, expiresIn: ttlSeconds };
    },
  };
}
