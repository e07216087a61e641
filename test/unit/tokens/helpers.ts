import { type CryptoKey, SignJWT } from 'jose';
import { expect } from 'vitest';
import { type GatehouseErrorCode, isGatehouseError } from '../../../src/errors/gatehouse-error.js';
import { OAuthError } from '../../../src/errors/oauth-error.js';
import type { TokenRejectionReason } from '../../../src/tokens/verifier.js';

export function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** An `alg: none` token built by hand: header.payload. with an empty signature. */
export function unsignedToken(
  payload: Record<string, unknown>,
  header: Record<string, unknown> = {},
): string {
  return `${base64url({ alg: 'none', typ: 'JWT', ...header })}.${base64url(payload)}.`;
}

/** Replaces the payload of a signed token while keeping its header and signature. */
export function tamperPayload(token: string, change: (claims: Record<string, unknown>) => void): string {
  const [header, payload, signature] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
  change(claims);
  return `${header}.${base64url(claims)}.${signature}`;
}

/** Signs a JWT whose payload is exactly `payload` (no claims added). */
export function signJwt(
  payload: Record<string, unknown>,
  key: CryptoKey | Uint8Array,
  header: { alg: string; kid?: string; typ?: string },
): Promise<string> {
  return new SignJWT(payload).setProtectedHeader(header).sign(key);
}

export function hmacKey(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

export async function expectRejection(
  promise: Promise<unknown>,
  reason: TokenRejectionReason,
): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error, `expected invalid_token/${reason}`).toBeInstanceOf(OAuthError);
  expect((error as OAuthError).code).toBe('invalid_token');
  expect((error as OAuthError).reason).toBe(reason);
}

export async function expectGatehouseError(
  promise: Promise<unknown>,
  code: GatehouseErrorCode,
): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(isGatehouseError(error, code), `expected GatehouseError ${code}, got ${String(error)}`).toBe(true);
}

/** Seconds since the epoch for a clock reading in milliseconds. */
export function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/** The error a synchronous call throws (undefined when it returns). */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}
