import { describe, expect, it } from 'vitest';
import type { UserRecord } from '../../src/stores/ports.js';
import {
  racer,
  type StoreContractOptions,
  type StoresHarness,
  T0,
  unique,
  useContractHarness,
} from './harness.js';

function userRecord(overrides: Partial<UserRecord> = {}): UserRecord {
  return {
    id: unique('user'),
    username: unique('alice'),
    email: 'alice@example.test',
    name: 'Alice Example',
    passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA',
    createdAt: T0,
    updatedAt: T0,
    credentialsChangedAt: T0,
    roles: [],
    ...overrides,
  };
}

/**
 * Registers the `UserStore` contract (see `src/stores/ports.ts`) for one adapter.
 *
 * @example
 * ```ts
 * describeUserStoreContract('memory', memoryHarness);
 * ```
 */
export function describeUserStoreContract(
  name: string,
  makeStores: () => Promise<StoresHarness>,
  options: StoreContractOptions = {},
): void {
  describe(`UserStore contract: ${name}`, () => {
    const ctx = useContractHarness(name, makeStores, options);

    it('round-trips every field through get and findByUsername', async () => {
      const user = userRecord({ name: 'Émile « Zoë » 🚪' });

      expect(await ctx.stores.users.create(user)).toBe(true);

      expect(await ctx.stores.users.get(user.id)).toStrictEqual(user);
      expect(await ctx.stores.users.findByUsername(user.username)).toStrictEqual(user);
    });

    it('keeps absent optional fields absent, not null', async () => {
      const { email: _email, name: _name, ...user } = userRecord();
      await ctx.stores.users.create(user);

      const stored = await ctx.stores.users.get(user.id);

      expect(stored).toStrictEqual(user);
      expect(stored).not.toHaveProperty('email');
      expect(stored).not.toHaveProperty('name');
    });

    it('returns undefined for an unknown id or username', async () => {
      await ctx.stores.users.create(userRecord({ username: 'alice' }));

      expect(await ctx.stores.users.get('user-unknown')).toBeUndefined();
      expect(await ctx.stores.users.findByUsername('bob')).toBeUndefined();
    });

    it('finds a username by exact match only', async () => {
      await ctx.stores.users.create(userRecord({ username: 'alice' }));

      expect(await ctx.stores.users.findByUsername('Alice')).toBeUndefined();
      expect(await ctx.stores.users.findByUsername('alic')).toBeUndefined();
      expect(await ctx.stores.users.findByUsername('alice ')).toBeUndefined();
      expect(await ctx.stores.users.findByUsername('alice%')).toBeUndefined();
      expect((await ctx.stores.users.findByUsername('alice'))?.username).toBe('alice');
    });

    it('refuses a taken username and keeps the original', async () => {
      const original = userRecord();
      await ctx.stores.users.create(original);
      const clash = userRecord({ username: original.username, name: 'Impostor' });

      expect(await ctx.stores.users.create(clash)).toBe(false);

      expect(await ctx.stores.users.get(clash.id)).toBeUndefined();
      expect(await ctx.stores.users.findByUsername(original.username)).toStrictEqual(original);
    });

    it('refuses a taken id and keeps the original', async () => {
      const original = userRecord();
      await ctx.stores.users.create(original);
      const clash = userRecord({ id: original.id });

      expect(await ctx.stores.users.create(clash)).toBe(false);

      expect(await ctx.stores.users.get(original.id)).toStrictEqual(original);
      expect(await ctx.stores.users.findByUsername(clash.username)).toBeUndefined();
    });

    it('lists every user ordered by username', async () => {
      const names = ['carol', 'émile', 'al', 'zoe', 'alice-b', 'alice.b', 'alice', 'bob2', 'bob10'];
      for (const [i, username] of names.entries()) {
        await ctx.stores.users.create(userRecord({ username, createdAt: T0 - i }));
      }

      const listed = await ctx.stores.users.list();

      expect(listed.map((user) => user.username)).toEqual([
        'al',
        'alice',
        'alice-b',
        'alice.b',
        'bob10',
        'bob2',
        'carol',
        'zoe',
        'émile',
      ]);
    });

    it('lists nothing when there are no users', async () => {
      expect(await ctx.stores.users.list()).toEqual([]);
    });

    it('replaces the password hash, updatedAt and credentialsChangedAt only', async () => {
      const user = userRecord();
      await ctx.stores.users.create(user);

      expect(await ctx.stores.users.setPassword(user.id, '$argon2id$new', T0 + 5000)).toBe(true);

      const expected = {
        ...user,
        passwordHash: '$argon2id$new',
        updatedAt: T0 + 5000,
        credentialsChangedAt: T0 + 5000,
      };
      expect(await ctx.stores.users.get(user.id)).toStrictEqual(expected);
      expect(await ctx.stores.users.findByUsername(user.username)).toStrictEqual(expected);
    });

    it('reports false when setting the password of an unknown user', async () => {
      expect(await ctx.stores.users.setPassword('user-unknown', '$argon2id$new', T0)).toBe(false);
    });

    it('setPassword with expectedHash is a compare-and-swap', async () => {
      const user = userRecord();
      await ctx.stores.users.create(user);
      expect(
        await ctx.stores.users.setPassword(
          user.id,
          '$argon2id$stale',
          T0 + 1,
          '$argon2id$not-the-stored-one',
        ),
      ).toBe(false);
      expect((await ctx.stores.users.get(user.id))?.passwordHash).toBe(user.passwordHash);
      expect(await ctx.stores.users.setPassword(user.id, '$argon2id$next', T0 + 2, user.passwordHash)).toBe(
        true,
      );
      expect((await ctx.stores.users.get(user.id))?.passwordHash).toBe('$argon2id$next');
    });

    describe('credentials and disabling', () => {
      it('round-trips disabledAt', async () => {
        const user = userRecord({ disabledAt: T0 + 1 });
        await ctx.stores.users.create(user);

        expect(await ctx.stores.users.get(user.id)).toStrictEqual(user);
      });

      it('setPassword moves credentialsChangedAt: what the old password authenticated stops counting', async () => {
        const user = userRecord();
        await ctx.stores.users.create(user);

        await ctx.stores.users.setPassword(user.id, '$argon2id$new', T0 + 5000, user.passwordHash);

        expect((await ctx.stores.users.get(user.id))?.credentialsChangedAt).toBe(T0 + 5000);
      });

      it('rehash replaces the hash and updatedAt but keeps credentialsChangedAt', async () => {
        const user = userRecord();
        await ctx.stores.users.create(user);

        expect(
          await ctx.stores.users.rehash(user.id, '$argon2id$stronger', T0 + 5000, user.passwordHash),
        ).toBe(true);

        expect(await ctx.stores.users.get(user.id)).toStrictEqual({
          ...user,
          passwordHash: '$argon2id$stronger',
          updatedAt: T0 + 5000,
        });
      });

      it('rehash never overwrites a password changed meanwhile', async () => {
        const user = userRecord();
        await ctx.stores.users.create(user);
        await ctx.stores.users.setPassword(user.id, '$argon2id$changed', T0 + 1);

        expect(await ctx.stores.users.rehash(user.id, '$argon2id$stale', T0 + 2, user.passwordHash)).toBe(
          false,
        );

        expect(await ctx.stores.users.get(user.id)).toStrictEqual({
          ...user,
          passwordHash: '$argon2id$changed',
          updatedAt: T0 + 1,
          credentialsChangedAt: T0 + 1,
        });
      });

      it('rehash reports false for an unknown user', async () => {
        expect(await ctx.stores.users.rehash('user-unknown', '$argon2id$x', T0, '$argon2id$y')).toBe(false);
      });

      it('setDisabled disables once, keeps the first disabledAt, and enables again', async () => {
        const user = userRecord();
        await ctx.stores.users.create(user);
        const disabled = { ...user, disabledAt: T0 + 10, updatedAt: T0 + 10 };

        expect(await ctx.stores.users.setDisabled(user.id, true, T0 + 10)).toStrictEqual(disabled);
        expect(await ctx.stores.users.setDisabled(user.id, true, T0 + 20)).toStrictEqual(disabled);
        expect(await ctx.stores.users.get(user.id)).toStrictEqual(disabled);

        const enabled = await ctx.stores.users.setDisabled(user.id, false, T0 + 30);
        expect(enabled).toStrictEqual({ ...user, updatedAt: T0 + 30 });
        expect(enabled).not.toHaveProperty('disabledAt');
        expect(await ctx.stores.users.setDisabled(user.id, false, T0 + 40)).toStrictEqual({
          ...user,
          updatedAt: T0 + 30,
        });
        expect(await ctx.stores.users.findByUsername(user.username)).toStrictEqual({
          ...user,
          updatedAt: T0 + 30,
        });
      });

      it('setDisabled returns undefined for an unknown user', async () => {
        expect(await ctx.stores.users.setDisabled('user-unknown', true, T0)).toBeUndefined();
      });

      it('keeps the new password when a password change and a rehash of the old one race', async () => {
        const pool = await ctx.racers();
        const user = userRecord();
        await ctx.stores.users.create(user);

        await Promise.all([
          racer(pool, 0).users.setPassword(user.id, '$argon2id$new', T0 + 2),
          racer(pool, 1).users.rehash(user.id, '$argon2id$rehashed-old', T0 + 1, user.passwordHash),
        ]);

        const stored = await ctx.stores.users.get(user.id);
        expect(stored?.passwordHash).toBe('$argon2id$new');
        expect(stored?.credentialsChangedAt).toBe(T0 + 2);
      });

      it('lets exactly one of 10 concurrent rehashes of the same hash win', async () => {
        const pool = await ctx.racers();
        const user = userRecord();
        await ctx.stores.users.create(user);

        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            racer(pool, i).users.rehash(user.id, `$argon2id$rehash-${i}`, T0 + i, user.passwordHash),
          ),
        );

        expect(results.filter((won) => won)).toHaveLength(1);
        expect((await ctx.stores.users.get(user.id))?.passwordHash).toBe(
          `$argon2id$rehash-${results.indexOf(true)}`,
        );
      });
    });

    it('deletes once, then reports false, and frees the username', async () => {
      const user = userRecord();
      await ctx.stores.users.create(user);

      expect(await ctx.stores.users.delete(user.id)).toBe(true);
      expect(await ctx.stores.users.delete(user.id)).toBe(false);

      expect(await ctx.stores.users.get(user.id)).toBeUndefined();
      expect(await ctx.stores.users.findByUsername(user.username)).toBeUndefined();
      expect(await ctx.stores.users.list()).toEqual([]);
      expect(await ctx.stores.users.create(userRecord({ username: user.username }))).toBe(true);
    });

    it('hands out copies: mutating a returned record never changes the stored one', async () => {
      const user = userRecord();
      await ctx.stores.users.create(user);

      const first = (await ctx.stores.users.get(user.id)) as {
        -readonly [K in keyof UserRecord]: UserRecord[K];
      };
      first.passwordHash = 'tampered';
      first.username = 'tampered';
      const listed = await ctx.stores.users.list();
      (listed[0] as { name?: string }).name = 'tampered';

      expect(await ctx.stores.users.get(user.id)).toStrictEqual(user);
      expect(await ctx.stores.users.findByUsername('tampered')).toBeUndefined();
    });

    it('admits exactly one of 10 concurrent creates of the same username', async () => {
      const pool = await ctx.racers();
      const username = unique('race');
      const candidates = Array.from({ length: 10 }, () => userRecord({ username }));

      const results = await Promise.all(candidates.map((user, i) => racer(pool, i).users.create(user)));

      expect(results.filter((created) => created)).toHaveLength(1);
      const winner = candidates[results.indexOf(true)];
      expect(await ctx.stores.users.findByUsername(username)).toStrictEqual(winner);
      expect(await ctx.stores.users.list()).toStrictEqual([winner]);
    });

    describe('roles and signing out', () => {
      it('stores roles sorted and distinct, on create and on setRoles, and moves only roles and updatedAt', async () => {
        const user = userRecord({ roles: ['operator', 'admin', 'operator'] });
        await ctx.stores.users.create(user);
        expect((await ctx.stores.users.get(user.id))?.roles).toEqual(['admin', 'operator']);

        const updated = await ctx.stores.users.setRoles(user.id, ['zeta', 'admin', 'zeta', 'audit'], T0 + 7);

        const expected = { ...user, roles: ['admin', 'audit', 'zeta'], updatedAt: T0 + 7 };
        expect(updated).toStrictEqual(expected);
        expect(await ctx.stores.users.get(user.id)).toStrictEqual(expected);
        expect(await ctx.stores.users.findByUsername(user.username)).toStrictEqual(expected);
        expect(await ctx.stores.users.list()).toStrictEqual([expected]);
      });

      it('clears roles with an empty list', async () => {
        const user = userRecord({ roles: ['admin'] });
        await ctx.stores.users.create(user);

        expect((await ctx.stores.users.setRoles(user.id, [], T0 + 1))?.roles).toEqual([]);
        expect((await ctx.stores.users.get(user.id))?.roles).toEqual([]);
      });

      it('setRoles and signOut return undefined for an unknown user and create nothing', async () => {
        expect(await ctx.stores.users.setRoles('user-unknown', ['admin'], T0)).toBeUndefined();
        expect(await ctx.stores.users.signOut('user-unknown', T0)).toBeUndefined();
        expect(await ctx.stores.users.list()).toEqual([]);
      });

      it('signOut moves credentialsChangedAt and updatedAt, and nothing else', async () => {
        const user = userRecord({ roles: ['admin'] });
        await ctx.stores.users.create(user);
        await ctx.stores.users.setDisabled(user.id, true, T0 + 1);

        const signedOut = await ctx.stores.users.signOut(user.id, T0 + 9);

        const expected = { ...user, disabledAt: T0 + 1, updatedAt: T0 + 9, credentialsChangedAt: T0 + 9 };
        expect(signedOut).toStrictEqual(expected);
        expect(await ctx.stores.users.get(user.id)).toStrictEqual(expected);
      });

      it('keeps roles through password changes, rehashes and disabling', async () => {
        const user = userRecord({ roles: ['admin'] });
        await ctx.stores.users.create(user);

        await ctx.stores.users.setPassword(user.id, '$argon2id$b', T0 + 1);
        await ctx.stores.users.rehash(user.id, '$argon2id$c', T0 + 2, '$argon2id$b');
        await ctx.stores.users.setDisabled(user.id, true, T0 + 3);
        await ctx.stores.users.signOut(user.id, T0 + 4);

        expect((await ctx.stores.users.get(user.id))?.roles).toEqual(['admin']);
      });
    });

    if (options.durable) {
      it('keeps roles and sign-outs across close and reopen', async () => {
        const user = userRecord();
        await ctx.stores.users.create(user);
        await ctx.stores.users.setRoles(user.id, ['admin'], T0 + 1);
        await ctx.stores.users.signOut(user.id, T0 + 2);

        const reopened = await ctx.reopen();

        expect(await reopened.users.get(user.id)).toStrictEqual({
          ...user,
          roles: ['admin'],
          updatedAt: T0 + 2,
          credentialsChangedAt: T0 + 2,
        });
      });

      it('keeps users and password changes across close and reopen', async () => {
        const user = userRecord();
        await ctx.stores.users.create(user);
        await ctx.stores.users.setPassword(user.id, '$argon2id$after', T0 + 1);
        await ctx.stores.users.rehash(user.id, '$argon2id$rehashed', T0 + 2, '$argon2id$after');
        await ctx.stores.users.setDisabled(user.id, true, T0 + 3);

        const reopened = await ctx.reopen();

        const expected = {
          ...user,
          passwordHash: '$argon2id$rehashed',
          updatedAt: T0 + 3,
          credentialsChangedAt: T0 + 1,
          disabledAt: T0 + 3,
        };
        expect(await reopened.users.get(user.id)).toStrictEqual(expected);
        expect(await reopened.users.list()).toStrictEqual([expected]);
      });
    }
  });
}
