import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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
import { GatehouseError } from '../errors/gatehouse-error.js';
import type { Clock } from '../ops/clock.js';

/** The file, inside `dataDir`, that holds Gatehouse's signing keys. */
export const SIGNING_KEYS_FILE = 'signing-keys.json';

/** The one algorithm Gatehouse signs its own tokens with. */
export const SIGNING_ALGORITHM = 'ES256';

/** What may be said about a key without revealing it. */
export interface KeyDescription {
  kid: string;
  alg: typeof SIGNING_ALGORITHM;
  /** When the key was generated (ISO 8601). */
  createdAt: string;
}

/** The key that signs new tokens. `privateKey` is a non-extractable WebCrypto key. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: typeof SIGNING_ALGORITHM;
  readonly privateKey: CryptoKey;
}

/** Something worth logging that happened while the key store was opened. */
export type KeyStoreNote =
  | { code: 'generated'; kid: string; path: string }
  | { code: 'in_memory'; kid: string }
  | { code: 'permissions_tightened'; path: string; previousMode: string };

/**
 * Gatehouse's own signing keys. Holds a list so rotation can be added without changing callers: the
 * newest key signs, every key listed verifies and is published.
 */
export interface KeyStore {
  /** The public keys for the JWKS endpoint: `kty`, `crv`, `x`, `y`, `kid`, `alg`, `use: 'sig'` only. */
  publicJwks(): { keys: JWK[] };
  /** The key new tokens are signed with (the newest). */
  signingKey(): SigningKey;
  /** A `jose` key resolver over the published keys (selects by `kid` and `alg`). */
  verificationKeys(): JWTVerifyGetKey;
  /** The signing key's id, algorithm and age. Never private material. */
  describe(): KeyDescription;
  /** What happened on open (key generated, permissions tightened, in-memory keys); for the start-up log. */
  readonly notes: readonly KeyStoreNote[];
}

export interface KeyStoreOptions {
  /** Directory for `signing-keys.json`. Omit to keep keys in memory only (tests; lost on restart). */
  dataDir?: string | undefined;
  /** Stamps `createdAt` on generated keys. */
  clock: Clock;
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

const keyFileSchema = z.object({
  version: z.literal(1),
  keys: z
    .array(
      z.object({
        kid: z.string().min(1),
        alg: z.literal(SIGNING_ALGORITHM),
        createdAt: z.iso.datetime(),
        privateJwk: privateJwkSchema,
      }),
    )
    .min(1),
});

type StoredKey = z.output<typeof keyFileSchema>['keys'][number];

interface LoadedKey {
  description: KeyDescription;
  publicJwk: JWK;
  privateKey: CryptoKey;
}

/**
 * Opens Gatehouse's signing-key store: loads `<dataDir>/signing-keys.json`, or generates an ES256 key
 * pair (kid = RFC 7638 thumbprint) and writes it with mode 0600 in a directory created with mode 0700.
 * A key file readable by group or others is tightened to 0600 and reported in `notes`. Without
 * `dataDir` the key lives in memory only.
 *
 * Rejects with `GatehouseError('ERR_KEY_INVALID')` when the file exists but cannot be read or trusted
 * (bad JSON, wrong shape, a `kid` that is not the key's thumbprint, a private key that does not match
 * its public half). It never overwrites an existing file.
 *
 * @example
 * const keys = await createKeyStore({ dataDir: '.gatehouse', clock: systemClock });
 */
export async function createKeyStore(options: KeyStoreOptions): Promise<KeyStore> {
  const { dataDir, clock } = options;
  if (dataDir === undefined) {
    const stored = await generateStoredKey(clock);
    return buildKeyStore([await loadKey(stored)], [{ code: 'in_memory', kid: stored.kid }]);
  }

  const path = join(dataDir, SIGNING_KEYS_FILE);
  const notes: KeyStoreNote[] = [];
  let file = await readKeyFile(path, notes);
  if (file === undefined) {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const stored = await generateStoredKey(clock);
    const created = await writeKeyFileExclusive(path, { version: 1, keys: [stored] });
    if (created) {
      notes.push({ code: 'generated', kid: stored.kid, path });
      file = { version: 1, keys: [stored] };
    } else {
      // Another instance created the file first; use its keys so both sign with the same key.
      file = await readKeyFile(path, notes);
      if (file === undefined) throw keyInvalid(`${path} disappeared while it was being created.`);
    }
  }

  const loaded = await Promise.all(file.keys.map((stored) => loadKey(stored, path)));
  return buildKeyStore(loaded, notes);
}

function buildKeyStore(keys: readonly LoadedKey[], notes: readonly KeyStoreNote[]): KeyStore {
  const byAge = [...keys].sort(
    (a, b) => Date.parse(a.description.createdAt) - Date.parse(b.description.createdAt),
  );
  const newest = byAge.at(-1);
  if (newest === undefined) throw keyInvalid('The key store holds no keys.');
  const signing: SigningKey = Object.freeze({
    kid: newest.description.kid,
    alg: SIGNING_ALGORITHM,
    privateKey: newest.privateKey,
  });
  const publicJwks = (): { keys: JWK[] } => ({ keys: byAge.map((key) => ({ ...key.publicJwk })) });
  const resolver = createLocalJWKSet(publicJwks());

  return {
    publicJwks,
    signingKey: () => signing,
    verificationKeys: () => resolver,
    describe: () => ({ ...newest.description }),
    notes: Object.freeze([...notes]),
  };
}

async function generateStoredKey(clock: Clock): Promise<StoredKey> {
  const { privateKey } = await generateKeyPair(SIGNING_ALGORITHM, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const privateJwk = privateJwkSchema.parse(jwk);
  return {
    kid: await calculateJwkThumbprint(publicPart(privateJwk)),
    alg: SIGNING_ALGORITHM,
    createdAt: new Date(clock.now()).toISOString(),
    privateJwk,
  };
}

function publicPart(jwk: z.output<typeof privateJwkSchema>): JWK & { kty: 'EC' } {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
}

async function loadKey(stored: StoredKey, path = 'memory'): Promise<LoadedKey> {
  const publicJwk: JWK = {
    ...publicPart(stored.privateJwk),
    kid: stored.kid,
    alg: SIGNING_ALGORITHM,
    use: 'sig',
  };
  if ((await calculateJwkThumbprint(publicPart(stored.privateJwk))) !== stored.kid) {
    throw keyInvalid(`A key in ${path} has a kid that is not its thumbprint.`);
  }
  let privateKey: CryptoKey;
  let publicKey: CryptoKey;
  try {
    privateKey = await importJWK({ ...stored.privateJwk }, SIGNING_ALGORITHM, { extractable: false });
    publicKey = await importJWK(publicPart(stored.privateJwk), SIGNING_ALGORITHM);
  } catch (cause) {
    throw keyInvalid(`A key in ${path} cannot be imported.`, cause);
  }
  // A private half that does not match the published public half would sign tokens nobody can verify.
  const probe = await new CompactSign(randomBytes(16))
    .setProtectedHeader({ alg: SIGNING_ALGORITHM })
    .sign(privateKey);
  try {
    await compactVerify(probe, publicKey, { algorithms: [SIGNING_ALGORITHM] });
  } catch (cause) {
    throw keyInvalid(`A key in ${path} has a private half that does not match its public half.`, cause);
  }
  return {
    description: { kid: stored.kid, alg: SIGNING_ALGORITHM, createdAt: stored.createdAt },
    publicJwk,
    privateKey,
  };
}

async function readKeyFile(
  path: string,
  notes: KeyStoreNote[],
): Promise<z.output<typeof keyFileSchema> | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    if (errnoCode(cause) === 'ENOENT') return undefined;
    throw keyInvalid(`${path} cannot be read.`, cause);
  }
  await tightenPermissions(path, notes);

  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw keyInvalid(`${path} is not valid JSON.`, cause);
  }
  const parsed = keyFileSchema.safeParse(json);
  if (!parsed.success) {
    throw keyInvalid(`${path} is not a Gatehouse signing-key file.`, parsed.error);
  }
  return parsed.data;
}

async function tightenPermissions(path: string, notes: KeyStoreNote[]): Promise<void> {
  if (process.platform === 'win32') return;
  const { mode } = await stat(path);
  if ((mode & 0o077) === 0) return;
  await chmod(path, 0o600);
  notes.push({
    code: 'permissions_tightened',
    path,
    previousMode: (mode & 0o777).toString(8).padStart(4, '0'),
  });
}

/**
 * Writes the file only if it does not exist yet. The content goes to a private temporary file first and
 * is hard-linked into place, so a concurrent reader never sees a half-written file and two instances
 * starting at once cannot overwrite each other's keys. Returns false when the file already existed.
 */
async function writeKeyFileExclusive(
  path: string,
  content: z.output<typeof keyFileSchema>,
): Promise<boolean> {
  const data = `${JSON.stringify(content, null, 2)}\n`;
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temporary, data, { mode: 0o600, flag: 'wx' });
  try {
    await chmod(temporary, 0o600);
    await link(temporary, path);
    return true;
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') return false;
    // Filesystems without hard links: fall back to an exclusive create of the file itself.
    try {
      await writeFile(path, data, { mode: 0o600, flag: 'wx' });
      await chmod(path, 0o600);
      return true;
    } catch (fallbackError) {
      if (errnoCode(fallbackError) === 'EEXIST') return false;
      throw keyInvalid(`${path} cannot be written.`, fallbackError);
    }
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

function errnoCode(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

function keyInvalid(message: string, cause?: unknown): GatehouseError {
  return new GatehouseError('ERR_KEY_INVALID', message, { cause });
}
