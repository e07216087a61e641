import { randomBytes } from 'node:crypto';
import {
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTHeaderParameters,
  SignJWT,
  type SignOptions,
} from 'jose';
import type { TestGateway } from '../../helpers/gateway.js';

/**
 * Token forgeries (RFC 8725 §2): each builds a compact JWS an attacker could present, starting from a
 * genuine Gatehouse access token's claims. Nothing here verifies anything.
 */

export type Claims = Record<string, unknown>;

/** The claims of a genuine Gatehouse access token for `subject`, valid for ten minutes from `nowMs`. */
export function genuineClaims(gw: TestGateway, subject: string, nowMs = Date.now()): Claims {
  const now = Math.floor(nowMs / 1000);
  return {
    iss: gw.gateway.urls.issuer,
    sub: subject,
    aud: gw.gateway.urls.resource,
    iat: now,
    exp: now + 600,
    jti: randomBytes(16).toString('base64url'),
    scope: '',
  };
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An unsecured JWT (`alg: none`, empty signature). */
export function unsecured(claims: Claims, header: Record<string, unknown> = {}): string {
  return `${b64({ alg: 'none', typ: 'at+jwt', ...header })}.${b64(claims)}.`;
}

/** Signed with Gatehouse's own current key: genuine, except for what `claims`/`header` change. */
export async function signedByGateway(
  gw: TestGateway,
  claims: Claims,
  header: Partial<JWTHeaderParameters> = {},
  options: SignOptions = {},
): Promise<string> {
  const { kid, alg, privateKey } = gw.gateway.keys.signingKey();
  return new SignJWT(claims)
    .setProtectedHeader({ alg, typ: 'at+jwt', kid, ...header })
    .sign(privateKey, options);
}

/** The gateway's published signing key, as the JWKS serves it. */
export async function publishedKey(gw: TestGateway): Promise<JWK> {
  const jwks = (await (await fetch(gw.gateway.urls.jwksUrl)).json()) as { keys: JWK[] };
  const key = jwks.keys[0];
  if (key === undefined) throw new Error('empty JWKS');
  return key;
}

/**
 * The algorithm-confusion forgery: HS256 with the server's *public* key as the HMAC secret (the bytes a
 * careless verifier would feed to HMAC when it lets the token choose the algorithm).
 */
export async function hmacWithPublicKey(gw: TestGateway, claims: Claims): Promise<string> {
  const jwk = await publishedKey(gw);
  const secret = new TextEncoder().encode(JSON.stringify(jwk));
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', ...(jwk.kid !== undefined && { kid: jwk.kid }) })
    .sign(secret);
}

/** An attacker's own ES256 key pair (public half as a JWK). */
export async function attackerKey(): Promise<{ privateKey: CryptoKey; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { privateKey, publicJwk: await exportJWK(publicKey) };
}

/** Signed with the attacker's key, under whatever header the attacker writes (`kid`, `jwk`, `jku`, …). */
export async function signedByAttacker(
  claims: Claims,
  header: Partial<JWTHeaderParameters> = {},
): Promise<string> {
  const { privateKey } = await attackerKey();
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', ...header }).sign(privateKey);
}

/** Replaces the payload of a signed token, keeping header and signature (a tampered claim). */
export function withPayload(token: string, claims: Claims): string {
  const [header, , signature] = token.split('.');
  return `${header}.${b64(claims)}.${signature}`;
}
