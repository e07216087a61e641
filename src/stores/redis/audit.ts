import { auditLimit, isTypePrefix } from '../list-page.js';
import type { AuditEntry, AuditQuery, AuditStore } from '../ports.js';
import { sweepLimit } from '../sweep-limit.js';
import type { RedisContext } from './context.js';
import { BEFORE } from './lua.js';
import { toList } from './replies.js';

/*
 * The audit log. `audits:entries` is a hash of every entry's JSON by id (`HSETNX` makes an append of a
 * stored id a no-op). Each entry is also a member of three sorted sets, all scores 0 so that they order by
 * member: `audits:by-time`, `audits:by-subject:<subject>` (entries with a subject) and
 * `audits:by-type:<type>`; `audits:types` is the set of types with entries. A member is `at` as 16
 * zero-padded digits, `:`, then the id, so byte order of members is (`at`, `id`) order and every time
 * window or cursor is one `BYLEX` range of the index that fits the query. Nothing expires: retention
 * (`deleteBefore`) removes an entry from the hash and from every index in one script.
 */

/** Digits of `at` in a member; enough for any epoch millisecond. */
const AT_DIGITS = 16;
/** Members one script reads at most before it hands back a cursor: the batch that keeps Redis responsive. */
const SCAN_BATCH = 1000;
/** Entries one retention script removes at most; `deleteBefore` runs as many as its limit needs. */
const DELETE_BATCH = 500;

function member(at: number, id: string): string {
  if (!Number.isSafeInteger(at) || at < 0)
    throw new RangeError('An audit entry needs a non-negative integer at.');
  return `${String(at).padStart(AT_DIGITS, '0')}:${id}`;
}

/** The lex bound for members at or after `at` (`[` inclusive: every member of `at` is longer). */
function atOrAfter(at: number): string {
  return `[${String(Math.max(0, at)).padStart(AT_DIGITS, '0')}`;
}

/** The lex bound for members before `at`. */
function before(at: number): string {
  return `(${String(Math.max(0, at)).padStart(AT_DIGITS, '0')}`;
}

/**
 * KEYS: entries, time index, types. ARGV: subject stem, type stem, then per entry: id, member, subject (''
 * for none), type, JSON. Each entry whose id is new is stored and indexed; one step for the whole batch.
 */
const APPEND = `
for i = 3, #ARGV, 5 do
  local id, m, subject, kind = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if redis.call('HSETNX', KEYS[1], id, ARGV[i + 4]) == 1 then
    redis.call('ZADD', KEYS[2], 0, m)
    if subject ~= '' then redis.call('ZADD', ARGV[1] .. subject, 0, m) end
    redis.call('ZADD', ARGV[2] .. kind, 0, m)
    redis.call('SADD', KEYS[3], kind)
  end
end
return 0
`;

/**
 * KEYS: entries, the index to read. ARGV: low bound, high bound, '1' for newest first, how many entries to
 * find, how many members to read at most, type to match ('' for any), '1' when that type is a prefix. Reads the index range in order, checking the filters the index does not
 * answer itself, until it found enough or read its batch. Returns the entries' JSON and, when it stopped
 * before the end of the range, the member to resume after.
 */
const SCAN = `
local low, high, rev = ARGV[1], ARGV[2], ARGV[3] == '1'
local wanted, budget = tonumber(ARGV[4]), tonumber(ARGV[5])
local kind, prefix = ARGV[6], ARGV[7] == '1'
local found, read, last = {}, 0, false
while #found < wanted and read < budget do
  local count = math.min(budget - read, 200)
  local members
  if rev then
    members = redis.call('ZREVRANGEBYLEX', KEYS[2], high, low, 'LIMIT', 0, count)
  else
    members = redis.call('ZRANGEBYLEX', KEYS[2], low, high, 'LIMIT', 0, count)
  end
  if #members == 0 then return {found, false} end
  for _, m in ipairs(members) do
    read = read + 1
    last = m
    local json = redis.call('HGET', KEYS[1], string.sub(m, ${AT_DIGITS + 2}))
    if json then
      local keep = true
      if kind ~= '' then
        local entry = cjson.decode(json)
        if prefix then keep = string.sub(entry.type, 1, #kind) == kind else keep = entry.type == kind end
      end
      if keep then
        found[#found + 1] = json
        if #found == wanted then break end
      end
    end
  end
  if rev then high = '(' .. last else low = '(' .. last end
  if #members < count and #found < wanted then return {found, false} end
end
return {found, last}
`;

/**
 * KEYS: entries, types. ARGV: type stem, prefix, low bound, high bound, '1' for newest first, limit. The
 * first `limit` entries (in the query's order) of each type under the prefix, merged and cut to `limit`:
 * at most `limit` members read per type.
 */
const MERGE_TYPES = `${BEFORE}
local prefix, low, high, rev, limit = ARGV[2], ARGV[3], ARGV[4], ARGV[5] == '1', tonumber(ARGV[6])
local members = {}
for _, kind in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if string.sub(kind, 1, #prefix) == prefix then
    local part
    if rev then
      part = redis.call('ZREVRANGEBYLEX', ARGV[1] .. kind, high, low, 'LIMIT', 0, limit)
    else
      part = redis.call('ZRANGEBYLEX', ARGV[1] .. kind, low, high, 'LIMIT', 0, limit)
    end
    for _, m in ipairs(part) do members[#members + 1] = m end
  end
end
if rev then
  table.sort(members, function(a, b) return before(b, a) end)
else
  table.sort(members, before)
end
local found = {}
for i = 1, math.min(limit, #members) do
  local json = redis.call('HGET', KEYS[1], string.sub(members[i], ${AT_DIGITS + 2}))
  if json then found[#found + 1] = json end
end
return found
`;

/**
 * KEYS: entries, time index, types. ARGV: subject stem, type stem, high bound, limit. Removes the oldest
 * entries before the bound, up to the limit, from the hash and from every index; a type whose index
 * empties leaves the set of types. Returns how many it removed.
 */
const DELETE_BEFORE = `
local members = redis.call('ZRANGEBYLEX', KEYS[2], '-', ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
for _, m in ipairs(members) do
  local id = string.sub(m, ${AT_DIGITS + 2})
  local json = redis.call('HGET', KEYS[1], id)
  redis.call('ZREM', KEYS[2], m)
  if json then
    local entry = cjson.decode(json)
    if type(entry.subject) == 'string' then redis.call('ZREM', ARGV[1] .. entry.subject, m) end
    local typed = ARGV[2] .. entry.type
    redis.call('ZREM', typed, m)
    if redis.call('EXISTS', typed) == 0 then redis.call('SREM', KEYS[3], entry.type) end
    redis.call('HDEL', KEYS[1], id)
  end
end
return #members
`;

/** The entry as stored: exactly the port's fields, in one JSON text. */
function entryJson(entry: AuditEntry): string {
  return JSON.stringify({
    id: entry.id,
    at: entry.at,
    type: entry.type,
    outcome: entry.outcome,
    subject: entry.subject,
    principal: entry.principal,
    clientId: entry.clientId,
    requestId: entry.requestId,
    ip: entry.ip,
    event: entry.event,
  });
}

function parseEntries(reply: unknown): AuditEntry[] {
  return toList(reply).map((json) => JSON.parse(String(json)) as AuditEntry);
}

/** The lex range of `query`'s time window and cursor: `[low, high]` as `ZRANGEBYLEX` reads them. */
function range(query: AuditQuery): { low: string; high: string } {
  let low = query.since === undefined ? '-' : atOrAfter(query.since);
  if (query.after !== undefined) {
    const cursor = member(Math.max(0, query.after.at), query.after.id);
    // The tighter of the two lower bounds: a cursor inside the window, or the window's start.
    if (low === '-' || cursor >= low.slice(1)) low = `(${cursor}`;
  }
  return { low, high: query.until === undefined ? '+' : before(query.until) };
}

export function createRedisAuditStore(ctx: RedisContext): AuditStore {
  const { keys } = ctx;
  const append = ctx.script('audit_append', APPEND);
  const scan = ctx.script('audit_scan', SCAN);
  const mergeTypes = ctx.script('audit_merge_types', MERGE_TYPES);
  const deleteBefore = ctx.script('audit_delete_before', DELETE_BEFORE);

  return {
    async append(entries) {
      if (entries.length === 0) return;
      const args: string[] = [keys.auditsBySubject, keys.auditsByType];
      for (const entry of entries) {
        args.push(entry.id, member(entry.at, entry.id), entry.subject ?? '', entry.type, entryJson(entry));
      }
      await append([keys.auditEntries, keys.auditsByTime, keys.auditTypes], args);
    },

    async query(query) {
      const limit = auditLimit(query.limit);
      if (limit === 0) return [];
      let { low, high } = range(query);
      const rev = query.order === 'desc';
      const prefix = query.type !== undefined && isTypePrefix(query.type);
      if (prefix && query.subject === undefined) {
        const reply = await mergeTypes(
          [keys.auditEntries, keys.auditTypes],
          [keys.auditsByType, query.type as string, low, high, rev ? '1' : '0', limit],
        );
        return parseEntries(reply);
      }
      // The narrowest index: the subject's, else the exact type's, else time; the rest is checked on the way.
      const index =
        query.subject !== undefined
          ? keys.auditsBySubject + query.subject
          : query.type !== undefined
            ? keys.auditsByType + query.type
            : keys.auditsByTime;
      const typeFilter = query.subject !== undefined && query.type !== undefined ? query.type : '';
      const found: AuditEntry[] = [];
      // Bounded batches: one script reads at most SCAN_BATCH members, so a sparse filter never blocks Redis.
      for (;;) {
        const [entries, resume] = toList(
          await scan(
            [keys.auditEntries, index],
            [low, high, rev ? '1' : '0', limit - found.length, SCAN_BATCH, typeFilter, prefix ? '1' : '0'],
          ),
        );
        found.push(...parseEntries(entries));
        if (found.length >= limit || typeof resume !== 'string') return found;
        if (rev) high = `(${resume}`;
        else low = `(${resume}`;
      }
    },

    async deleteBefore(beforeAt, limit) {
      let remaining = sweepLimit(limit);
      let removed = 0;
      while (remaining > 0) {
        const batch = Math.min(remaining, DELETE_BATCH);
        const count = Number(
          await deleteBefore(
            [keys.auditEntries, keys.auditsByTime, keys.auditTypes],
            [keys.auditsBySubject, keys.auditsByType, before(beforeAt), batch],
          ),
        );
        removed += count;
        remaining -= count;
        if (count < batch) break;
      }
      return removed;
    },
  };
}
