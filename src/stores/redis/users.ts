import type { UserRecord, UserStore } from '../ports.js';
import { normalizeRoles } from '../roles.js';
import type { RedisContext } from './context.js';
import {
  byteOrder,
  type Fields,
  hashArgs,
  num,
  optionalNum,
  optionalText,
  recordOf,
  text,
  toFields,
  toList,
} from './replies.js';

/*
 * A user is the hash `user:<id>`; `users:by-name` maps each username to its id, which makes usernames
 * unique and lists users without a scan. Neither expires.
 */

/** KEYS: user, username index. ARGV: username, id, fields. Inserts only when both id and username are free. */
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`;

/** KEYS: username index. ARGV: user stem, username. */
const FIND_BY_USERNAME = `
local id = redis.call('HGET', KEYS[1], ARGV[2])
if not id then return false end
return redis.call('HGETALL', ARGV[1] .. id)
`;

/** KEYS: username index. ARGV: user stem. Every user's record. */
const LIST = `
local users = {}
local names = redis.call('HGETALL', KEYS[1])
for i = 2, #names, 2 do
  local record = redis.call('HGETALL', ARGV[1] .. names[i])
  if #record > 0 then users[#users + 1] = record end
end
return users
`;

/**
 * KEYS: user. ARGV: new hash, now, whether the credentials changed ('1' / '0'), then the expected hash when
 * there is one: a compare-and-swap on the stored hash.
 */
const SET_PASSWORD = `
local current = redis.call('HGET', KEYS[1], 'passwordHash')
if not current or (ARGV[4] ~= nil and current ~= ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], 'passwordHash', ARGV[1], 'updatedAt', ARGV[2])
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'credentialsChangedAt', ARGV[2]) end
return 1
`;

/** KEYS: user. ARGV: '1' to disable / '0' to enable, now. `updatedAt` moves only when the state flips. */
const SET_DISABLED = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local disabledAt = redis.call('HGET', KEYS[1], 'disabledAt')
if ARGV[1] == '1' and not disabledAt then
  redis.call('HSET', KEYS[1], 'disabledAt', ARGV[2], 'updatedAt', ARGV[2])
elseif ARGV[1] == '0' and disabledAt then
  redis.call('HDEL', KEYS[1], 'disabledAt')
  redis.call('HSET', KEYS[1], 'updatedAt', ARGV[2])
end
return redis.call('HGETALL', KEYS[1])
`;

/**
 * KEYS: user. ARGV: field/value pairs to set. Sets them only on an existing user and returns the record
 * (nil when absent): `setRoles` and `signOut`, where a plain `HSET` would create a partial record.
 */
const UPDATE_EXISTING = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], unpack(ARGV))
return redis.call('HGETALL', KEYS[1])
`;

/** KEYS: user, username index. ARGV: id. Frees the username along with the record. */
const DELETE = `
local username = redis.call('HGET', KEYS[1], 'username')
if not username then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('HGET', KEYS[2], username) == ARGV[1] then redis.call('HDEL', KEYS[2], username) end
return 1
`;

function toRecord(fields: Fields): UserRecord {
  return {
    id: text(fields, 'id'),
    username: text(fields, 'username'),
    ...optionalText(fields, 'email'),
    ...optionalText(fields, 'name'),
    passwordHash: text(fields, 'passwordHash'),
    createdAt: num(fields, 'createdAt'),
    updatedAt: num(fields, 'updatedAt'),
    ...optionalNum(fields, 'disabledAt'),
    credentialsChangedAt: num(fields, 'credentialsChangedAt'),
    // A user stored before roles existed has no `roles` field.
    roles: fields.roles === undefined ? [] : (JSON.parse(fields.roles) as string[]),
  };
}

export function createRedisUserStore(ctx: RedisContext): UserStore {
  const { keys } = ctx;
  const create = ctx.script('users_create', CREATE);
  const findByUsername = ctx.script('users_find_by_username', FIND_BY_USERNAME);
  const list = ctx.script('users_list', LIST);
  const setPassword = ctx.script('users_set_password', SET_PASSWORD);
  const setDisabled = ctx.script('users_set_disabled', SET_DISABLED);
  const updateExisting = ctx.script('users_update_existing', UPDATE_EXISTING);
  const remove = ctx.script('users_delete', DELETE);

  return {
    async create(user) {
      const fields = hashArgs({
        id: user.id,
        username: user.username,
        email: user.email,
        name: user.name,
        passwordHash: user.passwordHash,
        createdAt: user.createdAt,
        updatedAt: user.updatedAt,
        disabledAt: user.disabledAt,
        credentialsChangedAt: user.credentialsChangedAt,
        roles: JSON.stringify(normalizeRoles(user.roles ?? [])),
      });
      return (
        (await create([keys.user + user.id, keys.usersByName], [user.username, user.id, ...fields])) === 1
      );
    },
    async get(id) {
      return recordOf(await ctx.run((client) => client.hgetall(keys.user + id)), toRecord);
    },
    async findByUsername(username) {
      return recordOf(await findByUsername([keys.usersByName], [keys.user, username]), toRecord);
    },
    async list() {
      const users = toList(await list([keys.usersByName], [keys.user])).flatMap((item) => {
        const fields = toFields(item);
        return fields === undefined ? [] : [toRecord(fields)];
      });
      return users.sort((a, b) => byteOrder(a.username, b.username));
    },
    async setPassword(id, passwordHash, now, expectedHash) {
      const expected = expectedHash === undefined ? [] : [expectedHash];
      return (await setPassword([keys.user + id], [passwordHash, now, '1', ...expected])) === 1;
    },
    async rehash(id, passwordHash, now, expectedHash) {
      return (await setPassword([keys.user + id], [passwordHash, now, '0', expectedHash])) === 1;
    },
    async setDisabled(id, disabled, now) {
      return recordOf(await setDisabled([keys.user + id], [disabled ? '1' : '0', now]), toRecord);
    },
    async setRoles(id, roles, now) {
      const reply = await updateExisting(
        [keys.user + id],
        ['roles', JSON.stringify(normalizeRoles(roles)), 'updatedAt', now],
      );
      return recordOf(reply, toRecord);
    },
    async signOut(id, now) {
      const reply = await updateExisting([keys.user + id], ['credentialsChangedAt', now, 'updatedAt', now]);
      return recordOf(reply, toRecord);
    },
    async delete(id) {
      return (await remove([keys.user + id, keys.usersByName], [id])) === 1;
    },
  };
}
