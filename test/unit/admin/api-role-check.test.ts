import { describe, expect, it } from 'vitest';
import { createAdminRoleCheck } from '../../../src/admin/api.js';
import { createManualClock } from '../../../src/ops/clock.js';
import { createMemoryStores } from '../../../src/stores/memory/index.js';
import type { UserRecord } from '../../../src/stores/ports.js';

function user(id: string, roles: string[]): UserRecord {
  return {
    id,
    username: id,
    passwordHash: 'x',
    createdAt: 0,
    updatedAt: 0,
    credentialsChangedAt: 0,
    roles,
  };
}

describe('the admin role check', () => {
  it('admits only an enabled account holding the admin role, read from the store', async () => {
    const { users } = createMemoryStores();
    const clock = createManualClock();
    await users.create(user('u_admin', ['admin']));
    await users.create(user('u_plain', []));
    const roles = createAdminRoleCheck({ users, clock, cacheMs: 0 });
    expect((await roles.admin('u_admin'))?.id).toBe('u_admin');
    expect(await roles.admin('u_plain')).toBeUndefined();
    expect(await roles.admin('u_missing')).toBeUndefined();
    await users.setDisabled('u_admin', true, clock.now());
    expect(await roles.admin('u_admin')).toBeUndefined();
  });

  it('remembers an answer for at most cacheMs, and forgets it on demand', async () => {
    const { users } = createMemoryStores();
    const clock = createManualClock();
    await users.create(user('u_admin', ['admin']));
    const roles = createAdminRoleCheck({ users, clock, cacheMs: 2000 });
    expect(await roles.admin('u_admin')).toBeDefined();
    await users.setRoles('u_admin', [], clock.now());
    clock.advance(1999);
    expect(await roles.admin('u_admin')).toBeDefined();
    clock.advance(1);
    expect(await roles.admin('u_admin')).toBeUndefined();
    await users.setRoles('u_admin', ['admin'], clock.now());
    expect(await roles.admin('u_admin')).toBeUndefined();
    roles.forget();
    expect(await roles.admin('u_admin')).toBeDefined();
  });
});
