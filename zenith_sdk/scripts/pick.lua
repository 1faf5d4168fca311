-- pick: move entries a caller read and picked itself (by job id), each only if it still matches
-- the filter and is still there byte for byte; atomic. Redis spends no time on the entries that
-- were not picked. A picked list entry is looked for at its position counted from the tail
-- (which pushes at the head do not move), then near it (pops at the tail since the read shift
-- it); a zset member is removed by value. What is not found is reported, untouched.
--
-- KEYS[1] source: failed/waiting LIST or delayed ZSET   KEYS[2] target waiting LIST (retry, promote)
-- ARGV[1] mode: "retry" (attempts reset to 0, error/failedAt removed), "promote" (pushed
--         unchanged), "delete", or "count" (only tells which picks the filter keeps)
-- ARGV[2] source type: "list" or "zset"
-- ARGV[3] tombstone: a value no job can equal, used to remove list entries in one LREM
-- ARGV[4] filter JSON (see _filter.lua), or "" for none
-- ARGV[5] most jobs to move in this call (0: no limit); picks past it are left where they are
-- ARGV[6...] the picks, oldest first: for a list, triples of position from the tail (1 = the
--         oldest entry), expected bytes and retried bytes; for a zset, pairs of expected member
--         and retried bytes. Retried bytes are those to push for a retry when the caller
--         computed them, else "" (the script then decodes the payload and rewrites it)
-- Returns: {moved, m, the m 1-based numbers of the picks not found, then those of the picks
--          the filter turned down}
local source, target = KEYS[1], KEYS[2]
local mode, kind, tombstone = ARGV[1], ARGV[2], ARGV[3]
local filter = ARGV[4] ~= '' and cjson.decode(ARGV[4]) or nil
local move_limit = tonumber(ARGV[5])
local NEAR = 32 -- how far from its expected position a list entry is looked for
local FIRST, STRIDE = 6, kind == 'list' and 3 or 2

--#include _retry
--#include _filter
--#include _push

-- The decoded job when the filter keeps raw (nil: no filter), else false.
local function kept(raw)
  if not filter then
    return nil
  end
  return job_matches(raw, filter)
end

local function rewritten(raw, retried, job)
  if mode ~= 'retry' then
    return raw
  end
  if retried ~= '' then
    return retried
  end
  if job == nil then
    local ok, decoded = pcall(cjson.decode, raw)
    job = ok and decoded or nil
  end
  return reset_for_retry(raw, job)
end

-- Entries near the tail are popped and pushed by workers while the caller reads, so every pick
-- of one call is likely shifted alike: the shift that found the last one is tried first.
local shift = 0
local function locate(position, expected)
  local at = position + shift
  if at >= 1 and redis.call('LINDEX', source, -at) == expected then
    return at
  end
  if at + NEAR < 1 then
    return nil
  end
  local low = math.max(1, at - NEAR)
  local around = redis.call('LRANGE', source, -(at + NEAR), -low)
  local best = nil
  for k = 1, #around do
    if around[k] == expected then
      local found = low + #around - k
      if best == nil or math.abs(found - at) < math.abs(best - at) then
        best = found
      end
    end
  end
  if best then
    shift = best - position
  end
  return best
end

-- Take a list pick out of the source (a tombstone in its place); its position, or nil.
local function take_from_list(position, expected)
  local at = locate(position, expected)
  if at then
    redis.call('LSET', source, -at, tombstone)
  end
  return at
end

local moved, missing, turned_down, pushed = 0, {}, {}, {}
local deepest, shallowest = nil, nil -- the list positions taken farthest from and nearest to the tail
for first = FIRST, #ARGV, STRIDE do
  local number = (first - FIRST) / STRIDE + 1
  local expected = kind == 'list' and ARGV[first + 1] or ARGV[first]
  local retried = ARGV[first + STRIDE - 1]
  local job = kept(expected)
  if job == false then
    turned_down[#turned_down + 1] = number
  elseif mode ~= 'count' and (move_limit == 0 or moved < move_limit) then
    local at = nil
    local found = false
    if kind == 'list' then
      at = take_from_list(tonumber(ARGV[first]), expected)
      found = at ~= nil
    else
      found = redis.call('ZREM', source, expected) == 1
    end
    if found then
      if mode ~= 'delete' then
        pushed[#pushed + 1] = rewritten(expected, retried, job)
      end
      moved = moved + 1
      if at then
        deepest = math.max(deepest or at, at)
        shallowest = math.min(shallowest or at, at)
      end
    else
      missing[#missing + 1] = number
    end
  end
end
if deepest then
  -- Remove the tombstones scanning from whichever end is nearer to all of them.
  local from_head = redis.call('LLEN', source) - shallowest + 1
  redis.call('LREM', source, deepest <= from_head and -moved or moved, tombstone)
end
push_all(target, pushed)
local out = {moved, #missing}
for _, number in ipairs(missing) do
  out[#out + 1] = number
end
for _, number in ipairs(turned_down) do
  out[#out + 1] = number
end
return out
