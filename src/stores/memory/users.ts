import type { UserRecord, UserStore } from '../ports.js';
import { normalizeRoles } from '../roles.js';
import { compareBinary, copyJson, type MemoryPort } from './copy.js';

/** Users by id, with a username index; both maps change together inside one synchronous step. */
export function createMemoryUserStore(): MemoryPort<UserStore> {
  const users = new Map<string, UserRecord>();
  const idsByUsername = new Map<string, string>();

  const store: UserStore = {
    async create(user) {
      if (users.has(user.id) || idsByUsername.has(user.username)) return false;
      users.set(user.id, copyJson({ ...user, roles: normalizeRoles(user.roles ?? []) }));
      idsByUsername.set(user.username, user.id);
      return true;
    },

    async get(id) {
      const user = users.get(id);
      return user === undefined ? undefined : copyJson(user);
    },

    async findByUsername(username) {
      const id = idsByUsername.get(username);
      const user = id === undefined ? undefined : users.get(id);
      return user === undefined ? undefined : copyJson(user);
    },

    async list() {
      return [...users.values()].sort((a, b) => compareBinary(a.username, b.username)).map(copyJson);
    },

    async setPassword(id, passwordHash, now, expectedHash) {
      const user = users.get(id);
      if (user === undefined) return false;
      if (expectedHash !== undefined && user.passwordHash !== expectedHash) return false;
      users.set(id, { ...user, passwordHash, updatedAt: now, credentialsChangedAt: now });
      return true;
    },

    async rehash(id, passwordHash, now, expectedHash) {
      const user = users.get(id);
      if (user === undefined || user.passwordHash !== expectedHash) return false;
      users.set(id, { ...user, passwordHash, updatedAt: now });
      return true;
    },

    async setDisabled(id, disabled, now) {
      const user = users.get(id);
      if (user === undefined) return undefined;
      if ((user.disabledAt !== undefined) === disabled) return copyJson(user);
      const { disabledAt: _previous, ...enabled } = user;
      const updated: UserRecord = disabled
        ? { ...enabled, disabledAt: now, updatedAt: now }
        : { ...enabled, updatedAt: now };
      users.set(id, updated);
      return copyJson(updated);
    },

    async setRoles(id, roles, now) {
      const user = users.get(id);
      if (user === undefined) return undefined;
      const updated: UserRecord = { ...user, roles: normalizeRoles(roles), updatedAt: now };
      users.set(id, updated);
      return copyJson(updated);
    },

    async signOut(id, now) {
      const user = users.get(id);
      if (user === undefined) return undefined;
      const updated: UserRecord = { ...user, credentialsChangedAt: now, updatedAt: now };
      users.set(id, updated);
      return copyJson(updated);
    },

    async delete(id) {
      const user = users.get(id);
      if (user === undefined) return false;
      users.delete(id);
      idsByUsername.delete(user.username);
      return true;
    },
  };

  return {
    store,
    clear() {
      users.clear();
      idsByUsername.clear();
    },
  };
}
