import { createHash, timingSafeEqual } from 'node:crypto';

/** RFC 7636 §4.1: 43–128 characters of the unreserved set. Challenges (base64url SHA-256) are 43. */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
const S256_CHALLENGE = /^[A-Za-z0-9\-_]{43}$/;

export function isWellFormedCodeVerifier(verifier: string): boolean {
  return VERIFIER.test(verifier);
}

export function isWellFormedS256Challenge(challenge: string): boolean {
  return S256_CHALLENGE.test(challenge);
}

/** RFC 7636 §4.6: `BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge`, compared in constant time. */
export function verifyS256(verifier: string, challenge: string): boolean {
  if (!isWellFormedCodeVerifier(verifier) || !isWellFormedS256Challenge(challenge)) return false;
  const computed = Buffer.from(createHash('sha256').update(verifier, 'ascii').digest('base64url'));
  const expected = Buffer.from(challenge);
  return computed.byteLength === expected.byteLength && timingSafeEqual(computed, expected);
}
