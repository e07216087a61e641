import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Authenticated encryption for secrets at rest (upstream tokens, private keys, grace responses):
 * AES-256-GCM with a random 96-bit nonce. A sealed value is `v1.<keyId>.<nonce>.<ciphertext+tag>`
 * (base64url), so a reader knows which key sealed it and a key can be rotated without losing data.
 */
export interface Sealer {
  /** Short fingerprint of the current key, embedded in every sealed value. */
  readonly keyId: string;
  /** Encrypts `plaintext`; `context` (not secret, not stored) must be given again to open it. */
  seal(plaintext: string, context: string): string;
  /** Decrypts; throws `SealError` when the value was tampered with, the context differs or no key fits. */
  open(sealed: string, context: string): string;
}

export class SealError extends Error {
  override readonly name = 'SealError';
  readonly code = 'ERR_SEAL_INVALID';
}

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

function keyIdOf(key: Uint8Array): string {
  return createHash('sha256').update('gatehouse-seal-key-id').update(key).digest('base64url').slice(0, 8);
}

/**
 * @param keys 32-byte keys; the first seals, all of them open (keep old keys until their data is gone).
 */
export function createSealer(keys: readonly Uint8Array[]): Sealer {
  const [current] = keys;
  if (current === undefined) throw new RangeError('createSealer needs at least one key');
  const byId = new Map<string, Uint8Array>();
  for (const key of keys) {
    if (key.byteLength !== 32) throw new RangeError('seal keys must be 32 bytes');
    byId.set(keyIdOf(key), key);
  }
  const keyId = keyIdOf(current);
  return {
    keyId,
    seal(plaintext, context) {
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', current, nonce);
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return `v1.${keyId}.${nonce.toString('base64url')}.${body.toString('base64url')}`;
    },
    open(sealed, context) {
      const [version, id, nonceText, bodyText, extra] = sealed.split('.');
      if (
        version !== 'v1' ||
        id === undefined ||
        nonceText === undefined ||
        bodyText === undefined ||
        extra !== undefined
      ) {
        throw new SealError('not a sealed value');
      }
      const key = byId.get(id);
      if (key === undefined) throw new SealError('sealed with an unknown key');
      const nonce = Buffer.from(nonceText, 'base64url');
      const body = Buffer.from(bodyText, 'base64url');
      if (nonce.byteLength !== NONCE_BYTES || body.byteLength < TAG_BYTES)
        throw new SealError('malformed sealed value');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, nonce);
        decipher.setAAD(Buffer.from(context, 'utf8'));
        decipher.setAuthTag(body.subarray(body.byteLength - TAG_BYTES));
        return Buffer.concat([
          decipher.update(body.subarray(0, body.byteLength - TAG_BYTES)),
          decipher.final(),
        ]).toString('utf8');
      } catch (error) {
        throw new SealError('sealed value failed authentication', { cause: error });
      }
    },
  };
}

/**
 * A sealer whose key is derived from a high-entropy secret the server does not keep (HKDF-SHA-256),
 * so only a holder of the secret can open what was sealed. Used for the refresh grace response,
 * keyed by the refresh token it answers.
 */
export function sealerFromSecret(secret: string, purpose: string): Sealer {
  const key = new Uint8Array(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), purpose, 32));
  return createSealer([key]);
}
