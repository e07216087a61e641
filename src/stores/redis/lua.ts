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
