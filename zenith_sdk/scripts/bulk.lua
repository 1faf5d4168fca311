-- bulk: one bounded chunk of a retry or delete over one state of one queue, by filter, atomic.
-- Matched jobs are removed from the source and, for a retry, pushed to the waiting list with
-- attempts reset to 0 and error/failedAt removed, every other byte unchanged.
-- A list is walked from its oldest end (negative indexes), which pushes at the head do not move.
--
-- KEYS[1] source: failed/waiting LIST or delayed ZSET   KEYS[2] target waiting LIST (retry)
-- ARGV[1] mode: "retry", "promote" (push unchanged), "delete" or "count"
-- ARGV[2] source type: "list" or "zset"
-- ARGV[3] offset: entries of the source already walked (from the oldest end)
-- ARGV[4] chunk: entries to look at in this call   ARGV[5] filter JSON (see below)
-- ARGV[6] sample size (matches returned)
-- ARGV[7] tombstone: a value no job can equal, used to remove list entries in one LREM
-- ARGV[8] most jobs to move in this call (0: no limit); matches past it are counted, not moved
-- Filter JSON: see _filter.lua.
-- Returns: {looked_at, matched, moved, sample...}; the caller's next offset is
-- offset + looked_at - moved, and the walk is over when looked_at < chunk.
local source, target = KEYS[1], KEYS[2]
local mode, kind = ARGV[1], ARGV[2]
local offset, chunk = tonumber(ARGV[3]), tonumber(ARGV[4])
local filter = cjson.decode(ARGV[5])
local sample_size, tombstone = tonumber(ARGV[6]), ARGV[7]
local move_limit = tonumber(ARGV[8])

--#include _retry
--#include _filter
--#include _push

local entries
if kind == 'list' then
  entries = redis.call('LRANGE', source, -(offset + chunk), -(offset + 1))
else
  entries = redis.call('ZRANGE', source, offset, offset + chunk - 1)
end

local matched, moved, sample, pushed = 0, 0, {}, {}
-- While every entry from the list's tail has been moved, they are popped at the end in one
-- RPOP instead of each being replaced by a tombstone.
local tail_run, in_run = 0, kind == 'list' and offset == 0
for position = #entries, 1, -1 do
  -- oldest first: in a list the oldest of the window is last; in a zset, reversed below
  local index = kind == 'list' and position or (#entries - position + 1)
  local raw = entries[index]
  local job = job_matches(raw, filter)
  local moving = false
  if job then
    matched = matched + 1
    if #sample < sample_size then
      sample[#sample + 1] = raw
    end
    moving = mode ~= 'count' and (move_limit == 0 or moved < move_limit)
  end
  if moving then
    if in_run then
      tail_run = tail_run + 1
    elseif kind == 'list' then
      redis.call('LSET', source, -(offset + #entries - index + 1), tombstone)
    else
      redis.call('ZREM', source, raw)
    end
    if mode == 'retry' then
      pushed[#pushed + 1] = reset_for_retry(raw, job)
    elseif mode == 'promote' then
      pushed[#pushed + 1] = raw
    end
    moved = moved + 1
  else
    in_run = false
  end
end
if tail_run > 0 then
  redis.call('RPOP', source, tail_run)
end
if kind == 'list' and moved > tail_run then
  -- The tombstones sit in the window just walked, near the tail: remove them scanning from there.
  redis.call('LREM', source, -(moved - tail_run), tombstone)
end
push_all(target, pushed)
local out = {#entries, matched, moved}
for _, raw in ipairs(sample) do
  out[#out + 1] = raw
end
return out
