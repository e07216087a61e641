/**
 * Lua shared by several scripts, prepended to a script's body. Numbers handed to `redis.call` are written
 * exactly (Redis 7 formats integers up to 2^53 in full), so epoch milliseconds survive a round trip.
 */

/**
 * `extend(key, ttl)`: gives an index key at least `ttl` milliseconds to live, never shortening it, so an
 * index always outlives the records it names.
 */
export const EXTEND = `
local function extend(key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
`;

/** `field(flat, name)`: one field of an `HGETALL` reply, or nil. */
export const FIELD = `
local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
  return nil
end
`;

/**
 * `before(a, b)`: byte order of two strings, as SQL's `BINARY` collation orders them (Lua's `<` on strings
 * follows the server's locale).
 */
export const BEFORE = `
local function before(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
`;

/**
 * Reads: the `HGETALL` of `KEYS[1]`'s members (a set), each under the stem `ARGV[1]`; members whose record
 * is gone are left out.
 */
export const MEMBER_HASHES = `
local records = {}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local record = redis.call('HGETALL', ARGV[1] .. member)
  if #record > 0 then records[#records + 1] = record end
end
return records
`;

/**
 * Removes up to `ARGV[3]` records whose score in the expiry index `KEYS[1]` is at most `ARGV[2]` (expired
 * at `now`), each at the stem `ARGV[1]` + member, and takes them out of every index in `KEYS`. Returns how
 * many records it deleted; an index entry whose record Redis already dropped goes without counting.
 */
export const DELETE_EXPIRED_MEMBERS = `
local removed = 0
local limit = tonumber(ARGV[3])
while removed < limit do
  local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, limit - removed)
  if #members == 0 then break end
  for _, member in ipairs(members) do
    for _, index in ipairs(KEYS) do redis.call('ZREM', index, member) end
    removed = removed + redis.call('DEL', ARGV[1] .. member)
  end
end
return removed
`;

/**
 * One batch of an operator's listing from a creation index `KEYS[1]` (a zset scoring each record's id by
 * its `createdAt`, so that ties come in id byte order: the listing's order). ARGV: record stem, the
 * cursor's `createdAt` ('' for the first page), the cursor's id, how many members to read, `hash` or
 * `string` (how the record is stored). Returns `{id, createdAt, record}` for each member read, the record
 * nil when it is gone (Redis expired it): such a member is removed from the index on the way.
 */
export const LIST_PAGE = `${BEFORE}
local stem, count, is_hash = ARGV[1], tonumber(ARGV[4]), ARGV[5] == 'hash'
local picked = {}
local from = '-inf'
if ARGV[2] ~= '' then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], ARGV[2])) do
    if #picked < count and before(ARGV[3], id) then picked[#picked + 1] = {id, ARGV[2]} end
  end
  from = '(' .. ARGV[2]
end
if #picked < count then
  local rest = redis.call('ZRANGEBYSCORE', KEYS[1], from, '+inf', 'WITHSCORES', 'LIMIT', 0, count - #picked)
  for i = 1, #rest, 2 do picked[#picked + 1] = {rest[i], rest[i + 1]} end
end
local out = {}
for _, p in ipairs(picked) do
  local record
  if is_hash then
    record = redis.call('HGETALL', stem .. p[1])
    if #record == 0 then record = false end
  else
    record = redis.call('GET', stem .. p[1])
  end
  if not record then redis.call('ZREM', KEYS[1], p[1]) end
  out[#out + 1] = {p[1], p[2], record}
end
return out
`;
