-- bulk: one bounded chunk of a retry, promotion or delete over one source of one queue, by
-- filter, atomic. Matched jobs are removed from the source and, for a retry or promotion,
-- pushed to the lane their "priority" names (else the lane ARGV[10] names); a retry resets attempts to 0
-- and removes error/failedAt, every other byte unchanged. Each job moved gets its per-job event
-- (see _event.lua). Counting what matches, without moving, is the read-only match script's work.
-- A list is walked from its oldest end (negative indexes), which pushes at the head do not move.
-- Matched jobs of a FIFO group whose group this operation must admit or release are left in
-- place and returned: the caller moves them with the pick script, which is given their groups'
-- pending lists (a script cannot name those keys itself).
--
-- KEYS[1] source: a LIST (lane, failed, pending) or a delayed ZSET
-- KEYS[2..5] the queue's lanes: critical, high, base, low
-- KEYS[6] the events stream, when the events are appended here (absent: they are returned)
-- ARGV[1] mode: "retry", "promote" (push unchanged) or "delete"
-- ARGV[2] source type: "list" or "zset"
-- ARGV[3] offset: entries of the source already walked (from the oldest end)
-- ARGV[4] chunk: entries to look at in this call   ARGV[5] filter JSON (see _filter.lua)
-- ARGV[6] sample size (matches returned)
-- ARGV[7] tombstone: a value no job can equal, used to remove list entries in one LREM
-- ARGV[8] most jobs to move in this call (0: no limit); matches past it are counted, not moved
-- ARGV[9] "admit" or "release" when grouped matches are left to the caller (see pick.lua), or ""
-- ARGV[10] the lane (1..4, as in KEYS[2..5]) of a moved job whose priority names no lane
-- ARGV[11] the head of each per-job event ("" for none)   ARGV[12] its tail
-- ARGV[13] the events stream's cap (approximate MAXLEN)
-- Returns: {looked_at, matched, moved, d, e, the d grouped matches left in place, the e events
-- to append (when KEYS[6] is absent), sample...}; the caller's next offset is
-- offset + looked_at - moved, and the walk is over when looked_at < chunk.
local source = KEYS[1]
local lanes = {critical = KEYS[2], high = KEYS[3], base = KEYS[4], low = KEYS[5]}
lanes.fallback = KEYS[1 + tonumber(ARGV[10] or 3)]
local mode, kind = ARGV[1], ARGV[2]
local offset, chunk = tonumber(ARGV[3]), tonumber(ARGV[4])
local filter = cjson.decode(ARGV[5])
local sample_size, tombstone = tonumber(ARGV[6]), ARGV[7]
local move_limit = tonumber(ARGV[8])
local defer_groups = (ARGV[9] or '') ~= ''

--#include _json
--#include _retry
--#include _filter
--#include _push
--#include _group
--#include _chunk
--#include _event

local events = new_job_events(ARGV[11] or '', ARGV[12] or '', KEYS[6], ARGV[13])

local entries = read_chunk(source, kind, offset, chunk)

local matched, moved, sample, deferred = 0, 0, {}, {}
local pushed = {[lanes.critical] = {}, [lanes.high] = {}, [lanes.base] = {}, [lanes.low] = {}}
-- While every entry from the list's tail has been moved, they are cut off at the end in one
-- LTRIM instead of each being replaced by a tombstone (an RPOP would hand every one back to Lua,
-- which hashes each string it receives: as costly as reading it again).
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
    moving = move_limit == 0 or moved < move_limit
    if moving and defer_groups and type(job.groupId) == 'string' and job.groupId ~= '' then
      deferred[#deferred + 1] = raw
      moving = false
    end
  end
  if moving then
    if in_run then
      tail_run = tail_run + 1
    elseif kind == 'list' then
      redis.call('LSET', source, -(offset + #entries - index + 1), tombstone)
    else
      redis.call('ZREM', source, raw)
    end
    if mode == 'retry' or mode == 'promote' then
      local batch = pushed[lane_of_job(job, lanes)]
      batch[#batch + 1] = mode == 'retry' and reset_for_retry(raw, job) or raw
    end
    job_moved(events, job)
    moved = moved + 1
  else
    in_run = false
  end
end
if tail_run > 0 then
  redis.call('LTRIM', source, 0, -(tail_run + 1))
end
if kind == 'list' and moved > tail_run then
  -- The tombstones sit in the window just walked, near the tail: remove them scanning from there.
  redis.call('LREM', source, -(moved - tail_run), tombstone)
end
for _, lane in ipairs({lanes.critical, lanes.high, lanes.base, lanes.low}) do
  push_all(lane, pushed[lane])
end
local returned = append_job_events(events)
local out = {#entries, matched, moved, #deferred, #returned}
for _, raw in ipairs(deferred) do
  out[#out + 1] = raw
end
for _, event in ipairs(returned) do
  out[#out + 1] = event
end
for _, raw in ipairs(sample) do
  out[#out + 1] = raw
end
return out
