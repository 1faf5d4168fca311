-- pick: move entries a caller read and picked itself (by job id), each only if it still matches
-- the filter and is still there byte for byte; atomic. Redis spends no time on the entries that
-- were not picked. A picked list entry is looked for at its position counted from the tail
-- (which pushes at the head do not move), then near it (pops at the tail since the read shift
-- it); a zset member is removed by value. What is not found is reported, untouched. Each job
-- moved gets its per-job event (see _event.lua).
--
-- KEYS[1] source: a LIST (lane, failed, pending, processing) or a delayed ZSET
-- KEYS[2..5] the queue's lanes: critical, high, base, low (where retried and promoted jobs go)
-- KEYS[6] group set   KEYS[7..6+G] the pending LISTs of the groups named in ARGV
-- KEYS[7+G] the events stream, when the events are appended here (absent: they are returned)
-- ARGV[1] mode: "retry" (attempts reset to 0, error/failedAt removed), "promote" (pushed
--         unchanged) or "delete"
-- ARGV[2] source type: "list" or "zset"
-- ARGV[3] tombstone: a value no job can equal, used to remove list entries in one LREM
-- ARGV[4] filter JSON (see _filter.lua), or "" for none
-- ARGV[5] most jobs to move in this call (0: no limit); picks past it are left where they are
-- ARGV[6] what a grouped pick does to its group: "admit" (a retried dead letter waits behind
--         its group if the group is held), "release" (a deleted fetchable job lets the next
--         one of its group go), or "" (nothing)
-- ARGV[7] the head of each per-job event ("" for none)   ARGV[8] its tail
-- ARGV[9] the events stream's cap (approximate MAXLEN)
-- ARGV[10] G, the number of groups   ARGV[11..10+G] group ids (the i-th is the group of KEYS[6+i])
-- then the picks, oldest first: for a list, position from the tail (1 = the oldest entry),
--         expected bytes, retried bytes, lane, group, event slot; for a zset the same without the
--         position. Retried bytes are those to push for a retry when the caller computed them,
--         else "" (the script then decodes the payload and rewrites it); lane is 1..4 (KEYS[2..5]);
--         group is 0 (none) or 1..G; the event slot is what the job's event holds between its head
--         and tail (its id and name, see _event.lua) when the caller computed it, else "" (the
--         script then decodes the payload for them). So a pick the caller computed all of costs
--         Redis no decoding.
-- Returns: {moved, m, t, the m 1-based numbers of the picks not found, the t numbers of the picks
--          the filter turned down, then the events to append (when the stream is not in KEYS)}
local source = KEYS[1]
local lanes = {critical = KEYS[2], high = KEYS[3], base = KEYS[4], low = KEYS[5]}
local active = KEYS[6]
local mode, kind, tombstone = ARGV[1], ARGV[2], ARGV[3]
local filter = ARGV[4] ~= '' and cjson.decode(ARGV[4]) or nil
local move_limit = tonumber(ARGV[5])
local group_action, group_count = ARGV[6], tonumber(ARGV[10])
local NEAR = 32 -- how far from its expected position a list entry is looked for
local FIRST = 11 + group_count
local STRIDE = kind == 'list' and 6 or 5

--#include _json
--#include _retry
--#include _filter
--#include _push
--#include _group
--#include _event

local events = new_job_events(ARGV[7], ARGV[8], KEYS[7 + group_count], ARGV[9])

-- The decoded job when the filter keeps raw (nil: no filter), else false.
local function kept(raw)
  if not filter then
    return nil
  end
  return job_matches(raw, filter)
end

local function decoded(raw)
  local ok, job = pcall(cjson.decode, raw)
  return ok and job or nil
end

local function rewritten(raw, retried, job)
  if mode ~= 'retry' then
    return raw
  end
  if retried ~= '' then
    return retried
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

-- Where a moved pick goes: its group's rules, else its lane (batched per lane).
local pushed = {{}, {}, {}, {}}
local function place(bytes, lane, group)
  local group_id = ARGV[10 + group]
  if group > 0 and group_action == 'admit' then
    admit(active, KEYS[6 + group], group_id, KEYS[1 + lane], bytes)
  elseif group > 0 and group_action == 'release' then
    release(active, KEYS[6 + group], group_id, lanes)
  elseif mode ~= 'delete' then
    local batch = pushed[lane]
    batch[#batch + 1] = bytes
  end
end

local moved, missing, turned_down = 0, {}, {}
local deepest, shallowest = nil, nil -- the list positions taken farthest from and nearest to the tail
for first = FIRST, #ARGV, STRIDE do
  local number = (first - FIRST) / STRIDE + 1
  local at_expected = kind == 'list' and first + 1 or first
  local expected, retried = ARGV[at_expected], ARGV[at_expected + 1]
  local lane, group = tonumber(ARGV[at_expected + 2]), tonumber(ARGV[at_expected + 3])
  local slot = ARGV[at_expected + 4]
  local job = kept(expected)
  if job == false then
    turned_down[#turned_down + 1] = number
  elseif move_limit == 0 or moved < move_limit then
    local at = nil
    local found = false
    if kind == 'list' then
      at = take_from_list(tonumber(ARGV[first]), expected)
      found = at ~= nil
    else
      found = redis.call('ZREM', source, expected) == 1
    end
    if found then
      if job == nil and ((events.head ~= '' and slot == '') or (mode == 'retry' and retried == '')) then
        job = decoded(expected)
      end
      place(rewritten(expected, retried, job), lane, group)
      if slot ~= '' then
        job_moved_in(events, slot)
      else
        job_moved(events, job)
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
for lane = 1, 4 do
  push_all(KEYS[1 + lane], pushed[lane])
end
local out = {moved, #missing, #turned_down}
for _, number in ipairs(missing) do
  out[#out + 1] = number
end
for _, number in ipairs(turned_down) do
  out[#out + 1] = number
end
for _, event in ipairs(append_job_events(events)) do
  out[#out + 1] = event
end
return out
