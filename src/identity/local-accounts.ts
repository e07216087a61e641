import { randomBytes } from 'node:crypto';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { addressLimitKey } from '../net/client-address.js';
import type { Clock } from '../ops/clock.js';
import type { CounterStore, UserRecord, UserStore } from '../stores/ports.js';
import {
  checkPasswordPolicy,
  dummyVerify,
  hashPassword,
  needsRehash,
  type PasswordHashOptions,
  resolveScryptParams,
  verifyPassword,
} from './password.js';

/** A local account as callers see it: the stored record without its password hash. */
export type LocalAccount = Omit<UserRecord, 'passwordHash' | 'credentialsChangedAt'>;

export interface LoginThrottleOptions {
  /** Failed logins for one username from one client address per window before that pair is throttled. Default 5. */
  readonly maxFailuresPerUsernameAndAddress?: number;
  /** Failed logins from one client address per window, whatever the username. Default 50. */
  readonly maxFailuresPerAddress?: number;
  /** Length of the fixed counting window, in milliseconds. Default 15 min. */
  readonly windowMs?: number;
}

export interface LocalAccountsOptions {
  readonly users: UserStore;
  readonly counters: CounterStore;
  readonly clock: Clock;
  /** scrypt parameters for new hashes and for rehash-on-login. Default: the production parameters. */
  readonly hashOptions?: PasswordHashOptions;
  readonly throttle?: LoginThrottleOptions;
}

export interface AddAccountInput {
  readonly username: string;
  readonly password: string;
  readonly email?: string;
  readonly name?: string;
}

export interface AuthenticateContext {
  /** The client's address, as `server.trustedProxies` resolved it (counted per IPv4 address or IPv6 /64). */
  readonly ip: string;
}

export type AuthenticateResult =
  | { readonly ok: true; readonly user: LocalAccount }
  /** Unknown user and wrong password are deliberately the same answer. */
  | { readonly ok: false; readonly reason: 'invalid_credentials' }
  /** Too many failures; the password was not checked. */
  | { readonly ok: false; readonly reason: 'throttled'; readonly retryAfterSeconds: number };

export interface LocalAccounts {
  /** Creates an account. Throws `ERR_USERNAME_INVALID`, `ERR_PASSWORD_POLICY`, `ERR_BAD_REQUEST`, `ERR_USER_EXISTS`. */
  add(input: AddAccountInput): Promise<LocalAccount>;
  /**
   * Checks a login, throttled per username *and* client address and per address. Never per username
   * alone: then anyone could lock a person out by failing on purpose. Never throws for bad credentials.
   */
  authenticate(username: string, password: string, context: AuthenticateContext): Promise<AuthenticateResult>;
  /**
   * Replaces a password; every sign-in, code and grant made with the old one stops counting (see
   * {@link isActive}). Returns the account. Throws `ERR_USER_NOT_FOUND`, `ERR_PASSWORD_POLICY`.
   */
  setPassword(username: string, password: string): Promise<LocalAccount>;
  /** Deletes an account and returns what it was. Throws `ERR_USER_NOT_FOUND`. */
  remove(username: string): Promise<LocalAccount>;
  /** Disables (or enables again) an account: a disabled one cannot sign in. Throws `ERR_USER_NOT_FOUND`. */
  setDisabled(username: string, disabled: boolean): Promise<LocalAccount>;
  /**
   * Whether what the user `id` authenticated at `authTime` (a sign-in, and the codes, grants and tokens
   * that came of it) still counts: the account exists, is enabled, and its password has not changed since.
   */
  isActive(id: string, authTime: number): Promise<boolean>;
  /** Every account, ordered by username. */
  list(): Promise<LocalAccount[]>;
  /** The account with this username (normalised first), or `undefined`. */
  find(username: string): Promise<LocalAccount | undefined>;
}

export const USERNAME_MAX_LENGTH = 64;
/** ASCII only: Unicode letters would let `аlice` (Cyrillic а) pass for `alice`. */
const USERNAME_PATTERN = /^[a-z0-9._@+-]+$/;
const EMAIL_MAX_LENGTH = 254;
const NAME_MAX_LENGTH = 200;
const CONTROL_CHARACTERS = /\p{Cc}/u;

const DEFAULT_THROTTLE = {
  maxFailuresPerUsernameAndAddress: 5,
  maxFailuresPerAddress: 50,
  windowMs: 15 * 60_000,
};

/**
 * The canonical form of a username: trimmed, NFKC, lower case, 1–64 characters of `a-z 0-9 . _ @ + -`.
 * Throws `ERR_USERNAME_INVALID`.
 */
export function normalizeUsername(username: string): string {
  const normalized = username.trim().normalize('NFKC').toLowerCase();
  if (normalized.length === 0 || normalized.length > USERNAME_MAX_LENGTH) {
    throw new GatehouseError(
      'ERR_USERNAME_INVALID',
      `a username must be 1 to ${USERNAME_MAX_LENGTH} characters long`,
    );
  }
  if (!USERNAME_PATTERN.test(normalized)) {
    throw new GatehouseError(
      'ERR_USERNAME_INVALID',
      'a username may contain only letters a-z, digits and the characters . _ @ + -',
    );
  }
  return normalized;
}

function tryNormalizeUsername(username: string): string | undefined {
  try {
    return normalizeUsername(username);
  } catch {
    return undefined;
  }
}

function optionalText(field: 'email' | 'name', value: string | undefined, max: number): string | undefined {
  if (value === undefined) return undefined;
  const text = value.trim().normalize('NFC');
  const bad = (message: string): never => {
    throw new GatehouseError('ERR_BAD_REQUEST', message, { details: { field } });
  };
  if (text.length === 0) bad(`${field} is empty`);
  if (text.length > max) bad(`${field} is longer than ${max} characters`);
  if (CONTROL_CHARACTERS.test(text)) bad(`${field} contains control characters`);
  if (field === 'email' && !/^[^\s@]+@[^\s@]+$/.test(text)) bad('email is not an email address');
  return text;
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`throttle.${name} must be a positive integer`);
  }
  return value;
}

function toAccount(user: UserRecord): LocalAccount {
  return {
    id: user.id,
    username: user.username,
    ...(user.email === undefined ? {} : { email: user.email }),
    ...(user.name === undefined ? {} : { name: user.name }),
    createdAt: user.createdAt,
    updatedAt: user.updatedAt,
    ...(user.disabledAt === undefined ? {} : { disabledAt: user.disabledAt }),
    roles: [...user.roles],
  };
}

function notFound(): GatehouseError {
  return new GatehouseError('ERR_USER_NOT_FOUND', 'no such user');
}

/**
 * Local username/password accounts: the embedded default login. Passwords are hashed with scrypt
 * (see `password.ts`); logins are throttled with fixed-window counters per username from one client
 * address, and per client address.
 *
 * Per username and address, an attempt is counted before its password is checked and the count is
 * reset by a success, so the limit holds exactly even for concurrent attempts; an attacker elsewhere
 * spends their own budget, never the user's. Per address only failures count (a success must not refund
 * an attacker's budget, and shared NATs must not be throttled by successes): the address is checked
 * before, counted after a failure, and checked again before a success is revealed, so a burst that was
 * in flight when the budget ran out learns nothing from its late successes.
 *
 * @example
 * ```ts
 * const accounts = createLocalAccounts({ users: stores.users, counters: stores.counters, clock: systemClock });
 * await accounts.add({ username: 'alice', password: 'correct horse battery staple' });
 * const result = await accounts.authenticate('Alice', 'correct horse battery staple', { ip: '203.0.113.7' });
 * ```
 */
export function createLocalAccounts(options: LocalAccountsOptions): LocalAccounts {
  const { users, counters, clock } = options;
  const hashOptions: PasswordHashOptions = { params: resolveScryptParams(options.hashOptions) };
  const throttle = options.throttle ?? {};
  const maxPerUsername = positiveInteger(
    'maxFailuresPerUsernameAndAddress',
    throttle.maxFailuresPerUsernameAndAddress ?? DEFAULT_THROTTLE.maxFailuresPerUsernameAndAddress,
  );
  const maxPerIp = positiveInteger(
    'maxFailuresPerAddress',
    throttle.maxFailuresPerAddress ?? DEFAULT_THROTTLE.maxFailuresPerAddress,
  );
  const windowMs = positiveInteger('windowMs', throttle.windowMs ?? DEFAULT_THROTTLE.windowMs);

  const usernameKey = (username: string, ip: string): string =>
    `login-failures:user:${username}:from:${addressLimitKey(ip)}`;
  const ipKey = (ip: string): string => `login-failures:ip:${addressLimitKey(ip)}`;

  const throttled = (resetAt: number, now: number): AuthenticateResult => ({
    ok: false,
    reason: 'throttled',
    retryAfterSeconds: Math.max(1, Math.ceil((resetAt - now) / 1000)),
  });

  const ipThrottle = async (ip: string): Promise<AuthenticateResult | undefined> => {
    const now = clock.now();
    const counted = await counters.peek(ipKey(ip), now);
    return counted !== undefined && counted.count >= maxPerIp ? throttled(counted.resetAt, now) : undefined;
  };

  const requireUser = async (username: string): Promise<UserRecord> => {
    const user = await users.findByUsername(normalizeUsername(username));
    if (user === undefined) throw notFound();
    return user;
  };

  /** Upgrades a hash made with weaker parameters, unless the password changed meanwhile. */
  const rehash = async (user: UserRecord, password: string): Promise<void> => {
    const upgraded = await hashPassword(password, hashOptions);
    await users.rehash(user.id, upgraded, clock.now(), user.passwordHash);
  };

  return {
    async add(input) {
      const username = normalizeUsername(input.username);
      const email = optionalText('email', input.email, EMAIL_MAX_LENGTH);
      const name = optionalText('name', input.name, NAME_MAX_LENGTH);
      checkPasswordPolicy(input.password);
      const passwordHash = await hashPassword(input.password, hashOptions);
      const now = clock.now();
      const user: UserRecord = {
        id: `usr_${randomBytes(16).toString('base64url')}`,
        username,
        ...(email === undefined ? {} : { email }),
        ...(name === undefined ? {} : { name }),
        passwordHash,
        createdAt: now,
        updatedAt: now,
        credentialsChangedAt: now,
        roles: [],
      };
      // The store's unique username is the arbiter: of concurrent adds exactly one is created.
      if (!(await users.create(user))) {
        throw new GatehouseError('ERR_USER_EXISTS', `the username "${username}" is taken`);
      }
      return toAccount(user);
    },

    async authenticate(rawUsername, password, { ip }) {
      const ipLimited = await ipThrottle(ip);
      if (ipLimited !== undefined) return ipLimited;

      const username = tryNormalizeUsername(rawUsername);
      if (username !== undefined) {
        const now = clock.now();
        const attempt = await counters.increment(usernameKey(username, ip), windowMs, now);
        if (attempt.count > maxPerUsername) return throttled(attempt.resetAt, now);
      }

      // An impossible username cannot exist, so skipping the dummy hash for it reveals nothing.
      const user = username === undefined ? undefined : await users.findByUsername(username);
      const verified =
        user === undefined
          ? username !== undefined && (await dummyVerify(password, hashOptions))
          : await verifyPassword(password, user.passwordHash);

      // A disabled account answers like a wrong password: its state is nobody's business.
      if (!verified || user === undefined || user.disabledAt !== undefined) {
        await counters.increment(ipKey(ip), windowMs, clock.now());
        return { ok: false, reason: 'invalid_credentials' };
      }
      const lateLimit = await ipThrottle(ip);
      if (lateLimit !== undefined) return lateLimit;

      await counters.reset(usernameKey(user.username, ip));
      if (needsRehash(user.passwordHash, hashOptions)) await rehash(user, password);
      return { ok: true, user: toAccount(user) };
    },

    async setPassword(username, password) {
      const user = await requireUser(username);
      checkPasswordPolicy(password);
      const passwordHash = await hashPassword(password, hashOptions);
      if (!(await users.setPassword(user.id, passwordHash, clock.now()))) throw notFound();
      return toAccount(user);
    },

    async remove(username) {
      const user = await requireUser(username);
      if (!(await users.delete(user.id))) throw notFound();
      return toAccount(user);
    },

    async setDisabled(username, disabled) {
      const user = await requireUser(username);
      const updated = await users.setDisabled(user.id, disabled, clock.now());
      if (updated === undefined) throw notFound();
      return toAccount(updated);
    },

    async isActive(id, authTime) {
      const user = await users.get(id);
      return user !== undefined && user.disabledAt === undefined && authTime >= user.credentialsChangedAt;
    },

    async list() {
      return (await users.list()).map(toAccount);
    },

    async find(username) {
      const normalized = tryNormalizeUsername(username);
      if (normalized === undefined) return undefined;
      const user = await users.findByUsername(normalized);
      return user === undefined ? undefined : toAccount(user);
    },
  };
}
