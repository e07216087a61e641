import { GatehouseError } from '../../errors/gatehouse-error.js';
import type { SessionKind, SessionRecord, SessionStore } from '../ports.js';
import { sessionFields } from '../session-fields.js';
import { sweepLimit } from '../sweep-limit.js';
import type { RedisContext } from './context.js';
import { listPage } from './list-page.js';
import { BEFORE, EXTEND, FIELD, LIST_PAGE, MEMBER_HASHES } from './lua.js';
import {
  byCreatedAtThenId,
  type Fields,
  hashArgs,
  num,
  recordOf,
  recordsOf,
  text,
  toFields,
  toList,
} from './replies.js';
import { TTL_MARGIN_MS, ttlMs } from './ttl.js';

/*
 * A session is the hash `session:<id>`; `sessions:by-principal:<principalKey>` holds the ids of each
 * principal and `sessions:by-deadline` scores every id by its effective deadline
 * (min(idleExpiresAt, absoluteExpiresAt)), moved on every touch, for the sweeper. `sessions:by-creation`
 * scores every id by its `createdAt`, for the operator's listing; whatever removes a session removes it
 * there too, and it lives as long as the deadline index.
 */

/**
 * KEYS: session, principal's set, deadline index, creation index. ARGV: session stem, now, max, evictable kinds (a JSON
 * array), TTL, deadline, id, then the record's fields. Count, eviction and insert are one step, so
 * concurrent creates never overshoot the cap and each evicted session goes to one caller.
 */
const CREATE = `${EXTEND}${BEFORE}
if redis.call('EXISTS', KEYS[1]) == 1 then return {'conflict'} end
local now = tonumber(ARGV[2])
local evictable = {}
for _, kind in ipairs(cjson.decode(ARGV[4])) do evictable[kind] = true end
local live, candidates = 0, {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local f = redis.call('HMGET', ARGV[1] .. id, 'kind', 'lastSeenAt', 'createdAt', 'idleExpiresAt',
    'absoluteExpiresAt')
  if not f[1] then
    redis.call('SREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZREM', KEYS[4], id)
  elseif tonumber(f[4]) > now and tonumber(f[5]) > now then
    live = live + 1
    if evictable[f[1]] then
      candidates[#candidates + 1] = { id = id, lastSeenAt = tonumber(f[2]), createdAt = tonumber(f[3]) }
    end
  end
end
local evicted = {}
if live >= tonumber(ARGV[3]) then
  local needed = live - tonumber(ARGV[3]) + 1
  if #candidates < needed then return {'refused', live} end
  table.sort(candidates, function(a, b)
    if a.lastSeenAt ~= b.lastSeenAt then return a.lastSeenAt < b.lastSeenAt end
    if a.createdAt ~= b.createdAt then return a.createdAt < b.createdAt end
    return before(a.id, b.id)
  end)
  for i = 1, needed do
    local id = candidates[i].id
    evicted[i] = redis.call('HGETALL', ARGV[1] .. id)
    redis.call('DEL', ARGV[1] .. id)
    redis.call('SREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZREM', KEYS[4], id)
  end
end
local ttl = tonumber(ARGV[5])
redis.call('HSET', KEYS[1], unpack(ARGV, 8))
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('SADD', KEYS[2], ARGV[7])
extend(KEYS[2], ttl)
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[7])
extend(KEYS[3], ttl)
redis.call('ZADD', KEYS[4], redis.call('HGET', KEYS[1], 'createdAt'), ARGV[7])
extend(KEYS[4], ttl)
return {'created', live, evicted}
`;

/**
 * KEYS: session, principal's set, deadline index, creation index. ARGV: id, principalKey, now, idle
 * timeout or '', margin.
 * Only the owner's live session moves; the TTL follows the new deadline.
 */
const TOUCH = `${EXTEND}
local f = redis.call('HMGET', KEYS[1], 'principalKey', 'idleTimeoutMs', 'idleExpiresAt', 'absoluteExpiresAt')
if not f[1] or f[1] ~= ARGV[2] then return false end
local now = tonumber(ARGV[3])
local absolute = tonumber(f[4])
if tonumber(f[3]) <= now or absolute <= now then return false end
local idle = tonumber(f[2])
if ARGV[4] ~= '' then
  idle = tonumber(ARGV[4])
  redis.call('HSET', KEYS[1], 'idleTimeoutMs', ARGV[4])
end
local deadline = math.min(now + idle, absolute)
redis.call('HSET', KEYS[1], 'lastSeenAt', ARGV[3], 'idleExpiresAt', deadline)
local ttl = deadline - now + tonumber(ARGV[5])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[3], deadline, ARGV[1])
extend(KEYS[3], ttl)
extend(KEYS[2], ttl)
extend(KEYS[4], ttl)
return redis.call('HGETALL', KEYS[1])
`;

/** KEYS: session. ARGV: expected version, data. Compare-and-swap on the version; the TTL stays. */
const UPDATE = `
local version = redis.call('HGET', KEYS[1], 'version')
if not version or tonumber(version) ~= tonumber(ARGV[1]) then return false end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'version', tonumber(version) + 1)
return redis.call('HGETALL', KEYS[1])
`;

/**
 * KEYS: session, deadline index, creation index. ARGV: id, principal-set stem, principalKey or '' (anyone's). Deletes the
 * session and its index entries; returns the record, or nil when absent or another principal's.
 */
const DELETE = `${FIELD}
local record = redis.call('HGETALL', KEYS[1])
if #record == 0 then return false end
local owner = field(record, 'principalKey')
if ARGV[3] ~= '' and owner ~= ARGV[3] then return false end
redis.call('DEL', KEYS[1])
redis.call('SREM', ARGV[2] .. owner, ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return record
`;

/**
 * KEYS: principal's set, deadline index, creation index. ARGV: session stem. Deletes and returns every
 * session of it.
 */
const DELETE_BY_PRINCIPAL = `
local removed = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local record = redis.call('HGETALL', ARGV[1] .. id)
  if #record > 0 then
    removed[#removed + 1] = record
    redis.call('DEL', ARGV[1] .. id)
  end
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end
redis.call('DEL', KEYS[1])
return removed
`;

/**
 * KEYS: deadline index, creation index. ARGV: session stem, principal-set stem, now, limit. Removes and returns up to
 * `limit` sessions whose deadline is at most `now`. An entry whose session Redis already dropped is removed
 * without counting; a session found live after all (it cannot be, the index moves with every touch) is
 * re-scored and kept.
 */
const DELETE_EXPIRED = `${FIELD}
local now = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local removed = {}
while #removed < limit do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[3], 'LIMIT', 0, limit - #removed)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    local record = redis.call('HGETALL', ARGV[1] .. id)
    local idle, absolute = tonumber(field(record, 'idleExpiresAt')), tonumber(field(record, 'absoluteExpiresAt'))
    if #record > 0 and idle > now and absolute > now then
      redis.call('ZADD', KEYS[1], math.min(idle, absolute), id)
    else
      redis.call('ZREM', KEYS[1], id)
      redis.call('ZREM', KEYS[2], id)
      if #record > 0 then
        redis.call('DEL', ARGV[1] .. id)
        redis.call('SREM', ARGV[2] .. field(record, 'principalKey'), id)
        removed[#removed + 1] = record
      end
    end
  end
end
return removed
`;

function toRecord(fields: Fields): SessionRecord {
  return {
    id: text(fields, 'id'),
    principalKey: text(fields, 'principalKey'),
    kind: text(fields, 'kind') as SessionKind,
    createdAt: num(fields, 'createdAt'),
    lastSeenAt: num(fields, 'lastSeenAt'),
    idleTimeoutMs: num(fields, 'idleTimeoutMs'),
    idleExpiresAt: num(fields, 'idleExpiresAt'),
    absoluteExpiresAt: num(fields, 'absoluteExpiresAt'),
    version: num(fields, 'version'),
    data: JSON.parse(text(fields, 'data')) as Record<string, unknown>,
  };
}

function isLive(record: SessionRecord, now: number): boolean {
  return record.idleExpiresAt > now && record.absoluteExpiresAt > now;
}

export function createRedisSessionStore(ctx: RedisContext): SessionStore {
  const { keys } = ctx;
  const create = ctx.script('sessions_create', CREATE);
  const touch = ctx.script('sessions_touch', TOUCH);
  const update = ctx.script('sessions_update', UPDATE);
  const remove = ctx.script('sessions_delete', DELETE);
  const removeByPrincipal = ctx.script('sessions_delete_by_principal', DELETE_BY_PRINCIPAL);
  const removeExpired = ctx.script('sessions_delete_expired', DELETE_EXPIRED);
  const members = ctx.script('member_hashes', MEMBER_HASHES);
  const listBatch = ctx.script('list_page', LIST_PAGE);

  return {
    async create(record, limit, now) {
      const deadline = Math.min(record.idleExpiresAt, record.absoluteExpiresAt);
      const reply = toList(
        await create(
          [
            keys.session + record.id,
            keys.sessionsByPrincipal + record.principalKey,
            keys.sessionsByDeadline,
            keys.sessionsByCreation,
          ],
          [
            keys.session,
            now,
            limit.max,
            JSON.stringify(limit.evictKinds ?? []),
            ttlMs(deadline, now),
            deadline,
            record.id,
            ...hashArgs({ ...sessionFields(record) }),
          ],
        ),
      );
      const [status, activeCount, evicted] = reply;
      if (status === 'conflict') {
        throw new GatehouseError('ERR_SESSION_CONFLICT', 'A session with this id already exists.');
      }
      if (status === 'refused') return { created: false, activeCount: Number(activeCount) };
      return { created: true, activeCount: Number(activeCount), evicted: recordsOf(evicted, toRecord) };
    },
    async get(id, now) {
      const record = recordOf(await ctx.run((client) => client.hgetall(keys.session + id)), toRecord);
      return record !== undefined && isLive(record, now) ? record : undefined;
    },
    async touch(id, principalKey, now, idleTimeoutMs) {
      const reply = await touch(
        [
          keys.session + id,
          keys.sessionsByPrincipal + principalKey,
          keys.sessionsByDeadline,
          keys.sessionsByCreation,
        ],
        [id, principalKey, now, idleTimeoutMs ?? '', TTL_MARGIN_MS],
      );
      return recordOf(reply, toRecord);
    },
    async update(id, expectedVersion, data) {
      return recordOf(await update([keys.session + id], [expectedVersion, JSON.stringify(data)]), toRecord);
    },
    async delete(id) {
      const reply = await remove(
        [keys.session + id, keys.sessionsByDeadline, keys.sessionsByCreation],
        [id, keys.sessionsByPrincipal, ''],
      );
      return toFields(reply) !== undefined;
    },
    async deleteOwned(id, principalKey) {
      const reply = await remove(
        [keys.session + id, keys.sessionsByDeadline, keys.sessionsByCreation],
        [id, keys.sessionsByPrincipal, principalKey],
      );
      return recordOf(reply, toRecord);
    },
    async deleteByPrincipal(principalKey) {
      const reply = await removeByPrincipal(
        [keys.sessionsByPrincipal + principalKey, keys.sessionsByDeadline, keys.sessionsByCreation],
        [keys.session],
      );
      return recordsOf(reply, toRecord).sort(byCreatedAtThenId);
    },
    async listByPrincipal(principalKey, now) {
      const reply = await members([keys.sessionsByPrincipal + principalKey], [keys.session]);
      return recordsOf(reply, toRecord)
        .filter((record) => isLive(record, now))
        .sort(byCreatedAtThenId);
    },
    list(now, page) {
      return listPage(listBatch, keys.sessionsByCreation, keys.session, 'hash', page, (stored) => {
        const record = recordOf(stored, toRecord);
        return record !== undefined && isLive(record, now) ? record : undefined;
      });
    },
    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      if (max === 0) return [];
      return recordsOf(
        await removeExpired(
          [keys.sessionsByDeadline, keys.sessionsByCreation],
          [keys.session, keys.sessionsByPrincipal, now, max],
        ),
        toRecord,
      );
    },
  };
}
