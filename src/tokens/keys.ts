import { randomBytes } from 'node:crypto';
import {
  CompactSign,
  type CryptoKey,
  calculateJwkThumbprint,
  compactVerify,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import { z } from 'zod';
import { createSealer, type Sealer } from '../crypto/seal.js';
import { GatehouseError } from '../errors/gatehouse-error.js';
import type { Clock } from '../ops/clock.js';
import { createMemorySigningKeyStore } from '../stores/memory/signing-keys.js';
import type { ClusterBus, SigningKeyRecord, SigningKeyStore } from '../stores/ports.js';

/** The one algorithm Gatehouse signs its own tokens with. */
export const SIGNING_ALGORITHM = 'ES256';

/** How long one key signs before the next takes over. Default 30 days. */
export const DEFAULT_ROTATION_MS = 30 * 24 * 3600_000;
/**
 * How long a retired key stays published, in milliseconds: longer than the longest token Gatehouse
 * signs (development tokens and access tokens: at most 24 h) plus clock tolerance. Default 25 h.
 */
export const DEFAULT_RETAIN_MS = 25 * 3600_000;
/** Least time between two store reads triggered by an unknown `kid`. */
const UNKNOWN_KID_RELOAD_MS = 10_000;

/** What may be said about a key without revealing it. */
export interface KeyDescription {
  kid: string;
  alg: typeof SIGNING_ALGORITHM;
  /** When the key was generated (ISO 8601). */
  createdAt: string;
  /** When the key stops signing (ISO 8601). */
  retiresAt: string;
}

/** The key that signs new tokens. `privateKey` is a non-extractable WebCrypto key. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: typeof SIGNING_ALGORITHM;
  readonly privateKey: CryptoKey;
}

/** Something worth logging that happened to the keys. */
export type KeyStoreNote =
  | { code: 'generated'; kid: string }
  | { code: 'loaded'; kids: readonly string[] }
  | { code: 'in_memory'; kid: string };

/**
 * Gatehouse's own signing keys, kept in the `SigningKeyStore` with their private halves sealed. The
 * newest unretired key signs; every key not yet expired verifies and is published, so tokens signed
 * before a rotation stay valid until they expire.
 */
export interface KeyStore {
  /** The public keys for the JWKS endpoint: `kty`, `crv`, `x`, `y`, `kid`, `alg`, `use: 'sig'` only. */
  publicJwks(): { keys: JWK[] };
  /** The key new tokens are signed with. */
  signingKey(): SigningKey;
  /**
   * A `jose` key resolver over the published keys. An unknown `kid` (a key another instance just
   * created) reloads the store once before failing.
   */
  verificationKeys(): JWTVerifyGetKey;
  /** The signing key's id, algorithm and age. Never private material. */
  describe(): KeyDescription;
  /** Reloads the keys and rotates when the signing key is due: generates its successor, drops expired keys. */
  refresh(): Promise<void>;
  /** Reloads the keys from the store, rotating nothing (another instance announced a new key). */
  reload(): Promise<void>;
  /**
   * Generates the next signing key now, whatever the schedule (`gatehouse keys rotate`), and announces it;
   * the keys before it keep verifying until they expire. Returns the new key.
   */
  rotate(): Promise<KeyDescription>;
  /** Stops listening to the cluster bus. */
  close(): void;
  /** What happened since the store was opened (keys generated or loaded); for the log. */
  readonly notes: readonly KeyStoreNote[];
}

export interface KeyStoreOptions {
  /** Where keys live. Default: in memory only (tests; lost on restart). */
  store?: SigningKeyStore | undefined;
  /** Seals private keys at rest. Default: a random key for this process (only with the default store). */
  sealer?: Sealer | undefined;
  clock: Clock;
  /** How long one key signs, in milliseconds. Default {@link DEFAULT_ROTATION_MS}. */
  rotationMs?: number | undefined;
  /** How long a retired key stays published, in milliseconds. Default {@link DEFAULT_RETAIN_MS}. */
  retainMs?: number | undefined;
  /**
   * The cluster bus of a shared store: a key this process generates is announced on it, and keys others
   * announce are loaded at once — from before the first key is looked for, so instances starting together
   * on an empty store each load the key the other generated. (An unknown `kid` also reloads, at most once
   * every few seconds, and the gateway refreshes every minute.)
   */
  bus?: ClusterBus | undefined;
}

const privateJwkSchema = z
  .object({
    kty: z.literal('EC'),
    crv: z.literal('P-256'),
    x: z.string().min(1),
    y: z.string().min(1),
    d: z.string().min(1),
  })
  .strip();

interface LoadedKey {
  readonly record: SigningKeyRecord;
  readonly publicJwk: JWK;
  readonly privateKey: CryptoKey;
}

const sealContext = (kid: string) => `gatehouse signing key ${kid}`;

/**
 * Opens Gatehouse's signing keys: loads them from `store`, generating the first ES256 key pair
 * (kid = RFC 7638 thumbprint) when there is none, and its successor whenever the signing key retires.
 * Call `refresh()` periodically (the gateway does every minute) so rotation happens on time.
 *
 * Rejects with `GatehouseError('ERR_KEY_INVALID')` for a stored key that cannot be trusted (sealed with
 * another secret key, tampered with, a `kid` that is not its thumbprint, halves that do not match).
 *
 * @example
 * const keys = await createKeyStore({ store: stores.signingKeys, sealer, clock: systemClock });
 */
export async function createKeyStore(options: KeyStoreOptions): Promise<KeyStore> {
  const { clock } = options;
  if ((options.store === undefined) !== (options.sealer === undefined)) {
    throw new TypeError('createKeyStore: give both store and sealer, or neither');
  }
  const inMemory = options.store === undefined;
  const store = options.store ?? createMemorySigningKeyStore().store;
  const sealer = options.sealer ?? createSealer([new Uint8Array(randomBytes(32))]);
  const rotationMs = options.rotationMs ?? DEFAULT_ROTATION_MS;
  const retainMs = options.retainMs ?? DEFAULT_RETAIN_MS;
  const notes: KeyStoreNote[] = [];
  const imported = new Map<string, LoadedKey>();
  let keys: LoadedKey[] = [];
  let resolver = createLocalJWKSet({ keys: [] });
  let lastReload = Number.NEGATIVE_INFINITY;
  let refreshing: Promise<void> | undefined;

  async function reload(): Promise<void> {
    const records = await store.list(clock.now());
    const next: LoadedKey[] = [];
    for (const record of records) {
      const known = imported.get(record.kid);
      const key = known ?? (await importRecord(record, sealer));
      imported.set(record.kid, key);
      next.push(key);
    }
    // Newest first; the kid breaks a tie, so instances that generated keys together sign with the same one.
    keys = next.sort(
      (a, b) => b.record.createdAt - a.record.createdAt || (a.record.kid < b.record.kid ? -1 : 1),
    );
    resolver = createLocalJWKSet({ keys: keys.map((key) => ({ ...key.publicJwk })) });
    lastReload = clock.now();
  }

  async function rotateIfDue(force = false): Promise<SigningKeyRecord | undefined> {
    await reload();
    const now = clock.now();
    if (!force && keys.some((key) => key.record.retiresAt > now)) return undefined;
    // A forced successor is strictly newer than every key, so it is the one that signs.
    const createdAt = force ? Math.max(now, (keys[0]?.record.createdAt ?? 0) + 1) : now;
    const record = await generateRecord(createdAt, rotationMs, retainMs, sealer);
    await store.create(record);
    // Announced, not required: the others also reload on the unknown kid and on their schedule.
    await options.bus?.publish({ type: 'signing-keys.changed' }).catch(() => undefined);
    notes.push(inMemory ? { code: 'in_memory', kid: record.kid } : { code: 'generated', kid: record.kid });
    await reload();
    // Expired keys are gone from `list`; remove their rows too.
    await store.deleteExpired(now, 100);
    return record;
  }

  const refresh = (): Promise<void> => {
    refreshing ??= rotateIfDue()
      .then(() => undefined)
      .finally(() => {
        refreshing = undefined;
      });
    return refreshing;
  };

  /** A forced rotation waits for a scheduled one in flight, so the two never generate a key each. */
  async function rotate(): Promise<KeyDescription> {
    await refreshing?.catch(() => undefined);
    const record = (await rotateIfDue(true)) as SigningKeyRecord;
    return describeRecord(record);
  }

  const stopListening = options.bus?.subscribe((message) => {
    if (message.type === 'signing-keys.changed') reload().catch(() => undefined);
  });
  await refresh();
  if (!notes.some((note) => note.code !== 'loaded'))
    notes.push({ code: 'loaded', kids: keys.map((key) => key.record.kid) });

  const current = (): LoadedKey => {
    const now = clock.now();
    const signing = keys.find((key) => key.record.retiresAt > now) ?? keys[0];
    if (signing === undefined) throw keyInvalid('The key store holds no keys.');
    return signing;
  };

  return {
    publicJwks: () => ({ keys: [...keys].reverse().map((key) => ({ ...key.publicJwk })) }),
    signingKey() {
      const key = current();
      // A retired key still verifies for `retainMs`; sign with it until the successor is loaded.
      if (key.record.retiresAt <= clock.now()) void refresh().catch(() => undefined);
      return { kid: key.record.kid, alg: SIGNING_ALGORITHM, privateKey: key.privateKey };
    },
    verificationKeys: () => async (header, token) => {
      const kid = header.kid;
      const known = keys.some((key) => key.record.kid === kid);
      if (!known && kid !== undefined && clock.now() - lastReload >= UNKNOWN_KID_RELOAD_MS) {
        await reload().catch(() => undefined);
      }
      return resolver(header, token);
    },
    describe: () => describeRecord(current().record),
    refresh,
    reload,
    rotate,
    close() {
      stopListening?.();
    },
    get notes() {
      return [...notes];
    },
  };
}

function describeRecord(record: SigningKeyRecord): KeyDescription {
  return {
    kid: record.kid,
    alg: SIGNING_ALGORITHM,
    createdAt: new Date(record.createdAt).toISOString(),
    retiresAt: new Date(record.retiresAt).toISOString(),
  };
}

async function generateRecord(
  now: number,
  rotationMs: number,
  retainMs: number,
  sealer: Sealer,
): Promise<SigningKeyRecord> {
  const { privateKey } = await generateKeyPair(SIGNING_ALGORITHM, { extractable: true });
  const privateJwk = privateJwkSchema.parse(await exportJWK(privateKey));
  const kid = await calculateJwkThumbprint(publicPart(privateJwk));
  return {
    kid,
    alg: SIGNING_ALGORITHM,
    publicJwk: { ...publicPart(privateJwk), kid, alg: SIGNING_ALGORITHM, use: 'sig' },
    privateJwkCiphertext: sealer.seal(JSON.stringify(privateJwk), sealContext(kid)),
    createdAt: now,
    retiresAt: now + rotationMs,
    expiresAt: now + rotationMs + retainMs,
  };
}

function publicPart(jwk: z.output<typeof privateJwkSchema>): JWK & { kty: 'EC' } {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
}

async function importRecord(record: SigningKeyRecord, sealer: Sealer): Promise<LoadedKey> {
  if (record.alg !== SIGNING_ALGORITHM) throw keyInvalid(`Key ${record.kid} uses ${record.alg}.`);
  let privateJwk: z.output<typeof privateJwkSchema>;
  try {
    privateJwk = privateJwkSchema.parse(
      JSON.parse(sealer.open(record.privateJwkCiphertext, sealContext(record.kid))),
    );
  } catch (cause) {
    throw keyInvalid(
      `Key ${record.kid} cannot be opened: it was sealed with another secret key, or altered.`,
      cause,
    );
  }
  if ((await calculateJwkThumbprint(publicPart(privateJwk))) !== record.kid) {
    throw keyInvalid(`Key ${record.kid} has a kid that is not its thumbprint.`);
  }
  let privateKey: CryptoKey;
  let publicKey: CryptoKey;
  try {
    privateKey = await importJWK({ ...privateJwk }, SIGNING_ALGORITHM, { extractable: false });
    publicKey = await importJWK(publicPart(privateJwk), SIGNING_ALGORITHM);
  } catch (cause) {
    throw keyInvalid(`Key ${record.kid} cannot be imported.`, cause);
  }
  // A private half that does not match the published public half would sign tokens nobody can verify.
  const probe = await new CompactSign(randomBytes(16))
    .setProtectedHeader({ alg: SIGNING_ALGORITHM })
    .sign(privateKey);
  try {
    await compactVerify(probe, publicKey, { algorithms: [SIGNING_ALGORITHM] });
  } catch (cause) {
    throw keyInvalid(`Key ${record.kid} has a private half that does not match its public half.`, cause);
  }
  return {
    record,
    publicJwk: { ...publicPart(privateJwk), kid: record.kid, alg: SIGNING_ALGORITHM, use: 'sig' },
    privateKey,
  };
}

function keyInvalid(message: string, cause?: unknown): GatehouseError {
  return new GatehouseError('ERR_KEY_INVALID', message, { cause });
}
