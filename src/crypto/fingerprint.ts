import { createHash } from 'node:crypto';

/**
 * Describes a secret without revealing it: its length and the first 12 hex digits of its SHA-256.
 * Two deployments can compare fingerprints to catch a signing-secret mismatch.
 */
export function describeSecret(secret: string | Uint8Array): { length: number; fingerprint: string } {
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
  return { length: bytes.byteLength, fingerprint: fingerprint(bytes) };
}

export function fingerprint(secret: string | Uint8Array): string {
  return `sha256:${createHash('sha256').update(secret).digest('hex').slice(0, 12)}`;
}

/** The hash used to key caches and store rows by token without keeping the token itself. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
