import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';
import { GatehouseError } from '../errors/gatehouse-error.js';

/** scrypt cost parameters: N = 2^`ln` (CPU/memory cost), `r` (block size), `p` (parallelism). */
export interface ScryptParams {
  readonly ln: number;
  readonly r: number;
  readonly p: number;
}

/**
 * The parameters new hashes are made with: N = 2^17, r = 8, p = 1, i.e. 128 MiB and ~0.35 s per hash.
 * This is the OWASP Password Storage Cheat Sheet's scrypt recommendation (minimum N = 2^17, r = 8,
 * p = 1). Raising them later is safe: every hash records its own parameters, and `needsRehash` flags
 * older ones so a login can upgrade them.
 */
export const DEFAULT_SCRYPT_PARAMS: ScryptParams = Object.freeze({ ln: 17, r: 8, p: 1 });

export interface PasswordHashOptions {
  /**
   * scrypt parameters for new hashes, and the bar `needsRehash` measures stored hashes against.
   * Default {@link DEFAULT_SCRYPT_PARAMS}. Only tests should pass anything cheaper.
   */
  readonly params?: ScryptParams;
}

/** NIST SP 800-63B §5.1.1.2: at least 8 characters; no composition rules. Counted in code points after NFKC. */
export const PASSWORD_MIN_LENGTH = 8;
/** Longest accepted password, in code points; bounds the work an attacker can make one hash cost. */
export const PASSWORD_MAX_LENGTH = 1024;

const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Stored parameters above these are refused rather than run: a tampered row must not exhaust memory. */
const MAX_LN = 20;
const MAX_R = 32;
const MAX_P = 16;
const MAX_MEMORY_BYTES = 1024 * 1024 * 1024;

/** `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<16-byte salt>$<32-byte hash>`, base64 without padding (as in PHC strings). */
const HASH_FORMAT =
  /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$/;
const ALGORITHM_ID = /^\$([A-Za-z0-9-]+)\$/;
const LONE_SURROGATE = /\p{Cs}/u;

/** A stored hash, taken apart. */
export interface ParsedPasswordHash {
  readonly algorithm: 'scrypt';
  readonly params: ScryptParams;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

function hashInvalid(message: string): GatehouseError {
  return new GatehouseError('ERR_PASSWORD_HASH_INVALID', message);
}

function paramsProblem(params: ScryptParams): string | undefined {
  const { ln, r, p } = params;
  if (!Number.isInteger(ln) || ln < 1 || ln > MAX_LN) return `ln must be an integer from 1 to ${MAX_LN}`;
  if (!Number.isInteger(r) || r < 1 || r > MAX_R) return `r must be an integer from 1 to ${MAX_R}`;
  if (!Number.isInteger(p) || p < 1 || p > MAX_P) return `p must be an integer from 1 to ${MAX_P}`;
  if (memoryBytes(params) > MAX_MEMORY_BYTES) return 'the parameters need more than 1 GiB';
  return undefined;
}

/** What OpenSSL's scrypt allocates (its `maxmem` check): the V array plus the B blocks. */
function memoryBytes({ ln, r, p }: ScryptParams): number {
  return 128 * r * (2 ** ln + p + 2);
}

/** The validated parameters `options` asks for; throws `RangeError` for values scrypt cannot or should not run. */
export function resolveScryptParams(options: PasswordHashOptions = {}): ScryptParams {
  const params = options.params ?? DEFAULT_SCRYPT_PARAMS;
  const problem = paramsProblem(params);
  if (problem !== undefined) throw new RangeError(`invalid scrypt parameters: ${problem}`);
  return { ln: params.ln, r: params.r, p: params.p };
}

function normalize(password: string): Buffer {
  return Buffer.from(password.normalize('NFKC'), 'utf8');
}

function derive(password: string, salt: Buffer, keyLength: number, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = {
    N: 2 ** params.ln,
    r: params.r,
    p: params.p,
    maxmem: memoryBytes(params),
  };
  return new Promise((resolve, reject) => {
    scrypt(normalize(password), salt, keyLength, options, (error, key) => {
      if (error === null) resolve(key);
      else reject(error);
    });
  });
}

function b64(bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '');
}

/**
 * Takes a stored hash apart. Throws `ERR_PASSWORD_HASH_INVALID` for an unknown algorithm, a malformed
 * string or parameters outside the accepted bounds.
 */
export function parsePasswordHash(stored: string): ParsedPasswordHash {
  const match = HASH_FORMAT.exec(stored);
  if (match === null) {
    const algorithm = ALGORITHM_ID.exec(stored)?.[1];
    if (algorithm !== undefined && algorithm !== 'scrypt') {
      throw hashInvalid(`unsupported password hash algorithm "${algorithm}"`);
    }
    throw hashInvalid('malformed password hash');
  }
  const [, ln, r, p, salt, hash] = match as unknown as [string, string, string, string, string, string];
  const params: ScryptParams = { ln: Number(ln), r: Number(r), p: Number(p) };
  const problem = paramsProblem(params);
  if (problem !== undefined) throw hashInvalid(`password hash parameters out of bounds: ${problem}`);
  const saltBytes = Buffer.from(salt, 'base64');
  const hashBytes = Buffer.from(hash, 'base64');
  // Only the canonical unpadded encoding is accepted, so one hash has exactly one spelling.
  if (b64(saltBytes) !== salt || b64(hashBytes) !== hash) throw hashInvalid('malformed password hash');
  return { algorithm: 'scrypt', params, salt: saltBytes, hash: hashBytes };
}

/**
 * Hashes a password (NFKC-normalised, UTF-8) with scrypt and a random 16-byte salt into a
 * self-describing string. Does not apply the password policy; see {@link checkPasswordPolicy}.
 *
 * @example
 * ```ts
 * const stored = await hashPassword('correct horse battery staple');
 * // '$scrypt$ln=17,r=8,p=1$<salt>$<hash>'
 * ```
 */
export async function hashPassword(password: string, options: PasswordHashOptions = {}): Promise<string> {
  const params = resolveScryptParams(options);
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, HASH_BYTES, params);
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(hash)}`;
}

/**
 * Whether `password` matches `stored`, compared in constant time, with the parameters recorded in
 * `stored`. Throws `ERR_PASSWORD_HASH_INVALID` when `stored` cannot be read (unknown algorithm,
 * malformed): that is damaged data, not a wrong password.
 *
 * @example
 * ```ts
 * if (await verifyPassword(input, user.passwordHash)) signIn(user);
 * ```
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parsePasswordHash(stored);
  const derived = await derive(password, parsed.salt, HASH_BYTES, parsed.params);
  return timingSafeEqual(derived, parsed.hash);
}

/**
 * Spends the time of one {@link verifyPassword} at the configured parameters and resolves `false`; call
 * it when the user does not exist, so response time does not reveal which usernames do.
 */
export async function dummyVerify(password: string, options: PasswordHashOptions = {}): Promise<false> {
  await derive(password, randomBytes(SALT_BYTES), HASH_BYTES, resolveScryptParams(options));
  return false;
}

/**
 * Whether `stored` was made with weaker parameters than `options` asks for now, so the next successful
 * login should re-hash the password. Unreadable hashes need rehashing too.
 */
export function needsRehash(stored: string, options: PasswordHashOptions = {}): boolean {
  const target = resolveScryptParams(options);
  let parsed: ParsedPasswordHash;
  try {
    parsed = parsePasswordHash(stored);
  } catch {
    return true;
  }
  const { ln, r, p } = parsed.params;
  return ln < target.ln || r < target.r || p < target.p;
}

/** Why a password was refused (`details.reason` of `ERR_PASSWORD_POLICY`). */
export type PasswordPolicyReason = 'too_short' | 'too_long' | 'malformed';

/**
 * NIST SP 800-63B §5.1.1.2: 8 to 1024 characters (code points, after NFKC), any characters, no
 * composition rules. Throws `ERR_PASSWORD_POLICY` with `details.reason`.
 */
export function checkPasswordPolicy(password: string): void {
  const refuse = (reason: PasswordPolicyReason, message: string): never => {
    throw new GatehouseError('ERR_PASSWORD_POLICY', message, {
      details: { reason, minLength: PASSWORD_MIN_LENGTH, maxLength: PASSWORD_MAX_LENGTH },
    });
  };
  // A lone surrogate has no UTF-8 encoding; two different ones would hash alike.
  if (LONE_SURROGATE.test(password)) refuse('malformed', 'the password is not valid Unicode text');
  const length = [...password.normalize('NFKC')].length;
  if (length < PASSWORD_MIN_LENGTH) {
    refuse('too_short', `the password must be at least ${PASSWORD_MIN_LENGTH} characters long`);
  }
  if (length > PASSWORD_MAX_LENGTH) {
    refuse('too_long', `the password must be at most ${PASSWORD_MAX_LENGTH} characters long`);
  }
}
