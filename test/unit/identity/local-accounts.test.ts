import type { ScryptOptions } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';

/** Options of every scrypt call, so the test can count hashes instead of timing them. */
const scryptCalls: ScryptOptions[] = [];
vi.mock('node:crypto', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:crypto')>();
  return {
    ...original,
    scrypt: (...args: Parameters<typeof original.scrypt>) => {
      const options = args[3];
      if (typeof options === 'object' && options !== null) scryptCalls.push(options as ScryptOptions);
      return (original.scrypt as (...a: unknown[]) => void)(...args);
    },
  };
});

import { isGatehouseError } from '../../../src/errors/gatehouse-error.js';
import {
  createLocalAccounts,
  type LocalAccountsOptions,
  normalizeUsername,
} from '../../../src/identity/local-accounts.js';
import { parsePasswordHash, verifyPassword } from '../../../src/identity/password.js';
import { createManualClock } from '../../../src/ops/clock.js';
import { createMemoryStores } from '../../../src/stores/memory/index.js';

/** 1 MiB scrypt, about a millisecond per hash; production defaults are tested in password.test.ts. */
const CHEAP = { params: { ln: 10, r: 8, p: 1 } };
const PASSWORD = 'correct horse battery staple';
const WINDOW_MS = 15 * 60_000;
const IP = '203.0.113.7';

function setup(overrides: Partial<LocalAccountsOptions> = {}) {
  const stores = createMemoryStores();
  const clock = createManualClock();
  const options: LocalAccountsOptions = {
    users: stores.users,
    counters: stores.counters,
    clock,
    hashOptions: CHEAP,
    ...overrides,
  };
  return { stores, clock, accounts: createLocalAccounts(options), options };
}

async function codeOf(action: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await action();
  } catch (error) {
    return isGatehouseError(error) ? error.code : `not a GatehouseError: ${String(error)}`;
  }
  return undefined;
}

describe('createLocalAccounts: managing accounts', () => {
  it('adds, finds, lists and removes accounts, never handing out the password hash', async () => {
    const { accounts, stores, clock } = setup();
    const alice = await accounts.add({
      username: 'alice',
      password: PASSWORD,
      email: 'alice@example.com',
      name: 'Alice Liddell',
    });
    expect(alice).toEqual({
      id: expect.stringMatching(/^usr_[A-Za-z0-9_-]{22}$/),
      username: 'alice',
      email: 'alice@example.com',
      name: 'Alice Liddell',
      createdAt: clock.now(),
      updatedAt: clock.now(),
      roles: [],
    });
    expect(alice).not.toHaveProperty('passwordHash');
    const bob = await accounts.add({ username: 'bob', password: 'another fine password' });
    expect(bob.id).not.toBe(alice.id);
    expect(bob).not.toHaveProperty('email');

    expect(await accounts.find('alice')).toEqual(alice);
    expect(await accounts.find('carol')).toBeUndefined();
    expect(await accounts.find('not a valid name!')).toBeUndefined();
    const list = await accounts.list();
    expect(list.map((account) => account.username)).toEqual(['alice', 'bob']);
    for (const account of list) expect(account).not.toHaveProperty('passwordHash');

    const stored = await stores.users.findByUsername('alice');
    expect(stored?.id).toBe(alice.id);
    expect(await verifyPassword(PASSWORD, stored?.passwordHash ?? '')).toBe(true);

    await accounts.remove('alice');
    expect(await accounts.find('alice')).toBeUndefined();
    expect(await stores.users.get(alice.id)).toBeUndefined();
    expect((await accounts.list()).map((account) => account.username)).toEqual(['bob']);
    expect(await codeOf(() => accounts.remove('alice'))).toBe('ERR_USER_NOT_FOUND');
    expect(await accounts.authenticate('alice', PASSWORD, { ip: IP })).toEqual({
      ok: false,
      reason: 'invalid_credentials',
    });
  });

  it('normalises usernames: trimmed, NFKC, lower case', async () => {
    const { accounts } = setup();
    const alice = await accounts.add({ username: ' Alice ', password: PASSWORD });
    expect(alice.username).toBe('alice');
    expect((await accounts.find('ALICE'))?.id).toBe(alice.id);
    expect((await accounts.find('\uff41\uff4c\uff49\uff43\uff45'))?.id).toBe(alice.id); // full-width
    const result = await accounts.authenticate('Alice ', PASSWORD, { ip: IP });
    expect(result.ok && result.user.id).toBe(alice.id);
    expect(await codeOf(() => accounts.add({ username: 'alice', password: PASSWORD }))).toBe(
      'ERR_USER_EXISTS',
    );
    expect(normalizeUsername('  Bob.Smith+mcp@Example.COM ')).toBe('bob.smith+mcp@example.com');
  });

  it('refuses usernames outside 1–64 characters of a-z 0-9 . _ @ + -', async () => {
    const { accounts } = setup();
    const invalid = [
      '',
      '   ',
      'a'.repeat(65),
      'al ice',
      'alice!',
      'ali/ce',
      '\u0430lice',
      'émile',
      'a\u0000b',
    ];
    for (const username of invalid) {
      expect(await codeOf(() => accounts.add({ username, password: PASSWORD })), username).toBe(
        'ERR_USERNAME_INVALID',
      );
    }
    expect((await accounts.add({ username: 'a'.repeat(64), password: PASSWORD })).username).toHaveLength(64);
    expect((await accounts.add({ username: 'x', password: PASSWORD })).username).toBe('x');
    expect((await accounts.list()).length).toBe(2);
  });

  it('applies the password policy on add and refuses bad email and name values', async () => {
    const { accounts } = setup();
    expect(await codeOf(() => accounts.add({ username: 'alice', password: 'short' }))).toBe(
      'ERR_PASSWORD_POLICY',
    );
    expect(
      await codeOf(() => accounts.add({ username: 'alice', password: PASSWORD, email: 'not-an-email' })),
    ).toBe('ERR_BAD_REQUEST');
    expect(
      await codeOf(() => accounts.add({ username: 'alice', password: PASSWORD, name: 'evil\u001b[2J' })),
    ).toBe('ERR_BAD_REQUEST');
    expect(await accounts.list()).toEqual([]);
  });

  it('lets exactly one of several concurrent adds of one username succeed', async () => {
    const { accounts } = setup();
    const results = await Promise.allSettled(
      ['carol', 'Carol', 'CAROL', ' carol', 'carol '].map((username) =>
        accounts.add({ username, password: PASSWORD }),
      ),
    );
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    for (const result of results) {
      if (result.status === 'rejected') {
        expect(isGatehouseError(result.reason, 'ERR_USER_EXISTS')).toBe(true);
      }
    }
    expect(await accounts.list()).toHaveLength(1);
  });

  it('changes a password: the old one stops working, the new one works', async () => {
    const { accounts, clock, stores } = setup();
    const alice = await accounts.add({ username: 'alice', password: PASSWORD });
    clock.advance(60_000);
    await accounts.setPassword('ALICE', 'a brand new passphrase');
    expect((await stores.users.get(alice.id))?.updatedAt).toBe(clock.now());
    expect(await accounts.authenticate('alice', PASSWORD, { ip: IP })).toEqual({
      ok: false,
      reason: 'invalid_credentials',
    });
    expect((await accounts.authenticate('alice', 'a brand new passphrase', { ip: IP })).ok).toBe(true);

    expect(await codeOf(() => accounts.setPassword('alice', 'short'))).toBe('ERR_PASSWORD_POLICY');
    expect((await accounts.authenticate('alice', 'a brand new passphrase', { ip: IP })).ok).toBe(true);
    expect(await codeOf(() => accounts.setPassword('nobody', PASSWORD))).toBe('ERR_USER_NOT_FOUND');
    expect(await codeOf(() => accounts.setPassword('not valid!', PASSWORD))).toBe('ERR_USERNAME_INVALID');
  });

  it('validates the throttle options at construction', () => {
    const stores = createMemoryStores();
    const base = { users: stores.users, counters: stores.counters, clock: createManualClock() };
    expect(() => createLocalAccounts({ ...base, throttle: { maxFailuresPerUsernameAndAddress: 0 } })).toThrow(
      RangeError,
    );
    expect(() => createLocalAccounts({ ...base, throttle: { maxFailuresPerAddress: 1.5 } })).toThrow(
      RangeError,
    );
    expect(() => createLocalAccounts({ ...base, throttle: { windowMs: -1 } })).toThrow(RangeError);
    expect(() => createLocalAccounts({ ...base, hashOptions: { params: { ln: 40, r: 8, p: 1 } } })).toThrow(
      RangeError,
    );
  });
});

describe('createLocalAccounts: authenticate', () => {
  it('accepts the right password and gives the same answer for a wrong password and an unknown user', async () => {
    const { accounts } = setup();
    const alice = await accounts.add({ username: 'alice', password: PASSWORD, email: 'alice@example.com' });
    expect(await accounts.authenticate('alice', PASSWORD, { ip: IP })).toEqual({ ok: true, user: alice });
    const wrong = await accounts.authenticate('alice', 'wrong password', { ip: IP });
    const unknown = await accounts.authenticate('mallory', 'wrong password', { ip: IP });
    const impossible = await accounts.authenticate('not a user name!', 'wrong password', { ip: IP });
    expect(wrong).toEqual({ ok: false, reason: 'invalid_credentials' });
    expect(unknown).toEqual(wrong);
    expect(impossible).toEqual(wrong);
  });

  it('spends a full password hash on unknown users, so timing does not reveal which usernames exist', async () => {
    const params = { ln: 10, r: 8, p: 1 };
    const { accounts } = setup({ hashOptions: { params } });
    await accounts.add({ username: 'alice', password: PASSWORD });
    // Counted, not timed: each answer must run scrypt exactly once, at the same cost.
    const costs = async (username: string): Promise<number[]> => {
      scryptCalls.length = 0;
      await accounts.authenticate(username, 'wrong password', { ip: IP });
      return scryptCalls.map((options) => options.N ?? options.cost ?? 0);
    };
    expect(await costs('alice')).toEqual([2 ** params.ln]);
    expect(await costs('mallory')).toEqual([2 ** params.ln]);
  });

  it('throttles a username from one address after 5 failures without checking the password, until the window ends', async () => {
    const { accounts, clock, stores } = setup();
    await accounts.add({ username: 'alice', password: PASSWORD });
    for (let attempt = 1; attempt <= 5; attempt++) {
      expect(await accounts.authenticate('alice', `guess ${attempt}`, { ip: IP })).toEqual({
        ok: false,
        reason: 'invalid_credentials',
      });
    }
    clock.advance(60_000);
    const lookup = vi.spyOn(stores.users, 'findByUsername');
    // The 6th attempt from that address, even with the right password, is refused unread.
    expect(await accounts.authenticate('Alice', PASSWORD, { ip: IP })).toEqual({
      ok: false,
      reason: 'throttled',
      retryAfterSeconds: (WINDOW_MS - 60_000) / 1000,
    });
    expect(lookup).not.toHaveBeenCalled();
    // Other users are unaffected.
    expect((await accounts.authenticate('bob', 'wrong password', { ip: IP })).ok).toBe(false);
    expect(lookup).toHaveBeenCalledTimes(1);

    clock.advance(WINDOW_MS - 60_000);
    const result = await accounts.authenticate('alice', PASSWORD, { ip: IP });
    expect(result.ok).toBe(true);
  });

  it('an attacker failing on purpose at one address cannot lock the user out at another', async () => {
    const { accounts } = setup();
    await accounts.add({ username: 'alice', password: PASSWORD });
    for (let attempt = 1; attempt <= 20; attempt++) {
      await accounts.authenticate('alice', `guess ${attempt}`, { ip: '203.0.113.66' });
    }
    const attacker = await accounts.authenticate('alice', PASSWORD, { ip: '203.0.113.66' });
    expect(!attacker.ok && attacker.reason).toBe('throttled');
    expect((await accounts.authenticate('alice', PASSWORD, { ip: '198.51.100.7' })).ok).toBe(true);
  });

  it('counts an IPv6 client by its /64, so rotating addresses inside it buys no extra guesses', async () => {
    const { accounts } = setup();
    await accounts.add({ username: 'alice', password: PASSWORD });
    for (let attempt = 1; attempt <= 5; attempt++) {
      await accounts.authenticate('alice', `guess ${attempt}`, { ip: `2001:db8:1:2::${attempt}` });
    }
    const rotated = await accounts.authenticate('alice', PASSWORD, { ip: '2001:db8:1:2:ffff::1' });
    expect(!rotated.ok && rotated.reason).toBe('throttled');
    expect((await accounts.authenticate('alice', PASSWORD, { ip: '2001:db8:1:3::1' })).ok).toBe(true);
  });

  it('counts concurrent attempts exactly: of 20 parallel guesses at one username from one address, 5 are checked', async () => {
    const { accounts } = setup();
    await accounts.add({ username: 'alice', password: PASSWORD });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => accounts.authenticate('alice', `guess ${i}`, { ip: IP })),
    );
    expect(results.filter((result) => !result.ok && result.reason === 'invalid_credentials')).toHaveLength(5);
    expect(results.filter((result) => !result.ok && result.reason === 'throttled')).toHaveLength(15);
  });

  it('resets the username counter on success', async () => {
    const { accounts } = setup();
    await accounts.add({ username: 'alice', password: PASSWORD });
    for (let attempt = 0; attempt < 4; attempt++) {
      await accounts.authenticate('alice', 'wrong password', { ip: IP });
    }
    expect((await accounts.authenticate('alice', PASSWORD, { ip: IP })).ok).toBe(true);
    for (let attempt = 0; attempt < 5; attempt++) {
      expect(await accounts.authenticate('alice', 'wrong password', { ip: IP })).toEqual({
        ok: false,
        reason: 'invalid_credentials',
      });
    }
    const sixth = await accounts.authenticate('alice', PASSWORD, { ip: IP });
    expect(!sixth.ok && sixth.reason).toBe('throttled');
  });

  it('throttles an IP after its failures across usernames, without checking the password', async () => {
    const { accounts, clock, stores } = setup({ throttle: { maxFailuresPerAddress: 3 } });
    await accounts.add({ username: 'alice', password: PASSWORD });
    for (const username of ['alice', 'bob', 'carol']) {
      expect(await accounts.authenticate(username, 'spray password', { ip: IP })).toEqual({
        ok: false,
        reason: 'invalid_credentials',
      });
    }
    const lookup = vi.spyOn(stores.users, 'findByUsername');
    expect(await accounts.authenticate('alice', PASSWORD, { ip: IP })).toEqual({
      ok: false,
      reason: 'throttled',
      retryAfterSeconds: WINDOW_MS / 1000,
    });
    expect(lookup).not.toHaveBeenCalled();
    // Another address is not affected, and alice's own counter holds only her one failure.
    expect((await accounts.authenticate('alice', PASSWORD, { ip: '198.51.100.9' })).ok).toBe(true);

    clock.advance(WINDOW_MS);
    expect((await accounts.authenticate('alice', PASSWORD, { ip: IP })).ok).toBe(true);
  });

  it('does not count successes against an IP', async () => {
    const { accounts } = setup({ throttle: { maxFailuresPerAddress: 2 } });
    await accounts.add({ username: 'alice', password: PASSWORD });
    for (let attempt = 0; attempt < 5; attempt++) {
      expect((await accounts.authenticate('alice', PASSWORD, { ip: IP })).ok).toBe(true);
    }
  });

  it('hides a success that completes after its IP ran out of failures while it was in flight', async () => {
    const { stores, accounts } = setup({ throttle: { maxFailuresPerAddress: 2 } });
    // Alice's hash is slower (8 MiB) than the guesses at unknown users (1 MiB), so it finishes last.
    const slow = createLocalAccounts({
      users: stores.users,
      counters: stores.counters,
      clock: createManualClock(),
      hashOptions: { params: { ln: 13, r: 8, p: 1 } },
    });
    await slow.add({ username: 'alice', password: PASSWORD });
    const [first, second, alice] = await Promise.all([
      accounts.authenticate('mallory', 'guess', { ip: IP }),
      accounts.authenticate('trent', 'guess', { ip: IP }),
      accounts.authenticate('alice', PASSWORD, { ip: IP }),
    ]);
    expect(first).toEqual({ ok: false, reason: 'invalid_credentials' });
    expect(second).toEqual({ ok: false, reason: 'invalid_credentials' });
    expect(!alice.ok && alice.reason).toBe('throttled');
  });

  it('re-hashes a password made with weaker parameters on a successful login', async () => {
    const { stores, clock, accounts: weak } = setup();
    await weak.add({ username: 'alice', password: PASSWORD });
    const stronger = createLocalAccounts({
      users: stores.users,
      counters: stores.counters,
      clock,
      hashOptions: { params: { ln: 11, r: 8, p: 1 } },
    });
    const before = (await stores.users.findByUsername('alice'))?.passwordHash ?? '';
    expect((await stronger.authenticate('alice', 'wrong password', { ip: IP })).ok).toBe(false);
    expect((await stores.users.findByUsername('alice'))?.passwordHash).toBe(before);

    expect((await stronger.authenticate('alice', PASSWORD, { ip: IP })).ok).toBe(true);
    const after = (await stores.users.findByUsername('alice'))?.passwordHash ?? '';
    expect(parsePasswordHash(after).params).toEqual({ ln: 11, r: 8, p: 1 });
    expect((await stronger.authenticate('alice', PASSWORD, { ip: IP })).ok).toBe(true);
    // Never downgraded by a weaker configuration.
    expect((await weak.authenticate('alice', PASSWORD, { ip: IP })).ok).toBe(true);
    expect((await stores.users.findByUsername('alice'))?.passwordHash).toBe(after);
  });
});
