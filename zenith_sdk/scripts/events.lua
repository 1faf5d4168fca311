-- events: record lifecycle events in one call: each goes to the capped events stream and,
-- when it has a log line, to the live log channel and the capped history list; finished
-- jobs are counted in per-minute throughput counters and in the per-queue counters hashes.
--
-- KEYS[1] events STREAM   KEYS[2] log history LIST   KEYS[3 .. 2+K] throughput counters, one per minute
-- KEYS[3+K ..] counters HASHes, one per queue (C of them)
-- ARGV[1] the head, a JSON array of strings: [1] stream cap (approximate MAXLEN), [2] live log channel
--   (a channel, not a key), [3] last history index kept (the history cap - 1), [4] throughput counter
--   TTL in seconds, [5] number of events N, [6] number of counters hashes C (K = #KEYS - 2 - C),
--   [7 .. 6+K] how many finished jobs to add to each throughput counter, then per counters hash:
--   M, M pairs (field, integer to add), F, F pairs (field, float to add)
-- ARGV[2 ..] N pairs: the event JSON, the log line JSON ("" for none)
-- Returns: N.
--
-- The head is one argument, not one each: every argument costs the caller and the server more
-- than its bytes do. Its numbers are strings, which redis.call passes on as they are (a Lua
-- number would be formatted again, slowly, and only exactly up to 2^53).
local stream, history = KEYS[1], KEYS[2]
local head = cjson.decode(ARGV[1])
local maxlen, channel, history_last, counter_ttl = head[1], head[2], head[3], head[4]
local n, hashes = tonumber(head[5]), tonumber(head[6])
local counters = #KEYS - 2 - hashes

--#include _push

for i = 1, counters do
  redis.call('INCRBY', KEYS[2 + i], head[6 + i])
  redis.call('EXPIRE', KEYS[2 + i], counter_ttl)
end

local at = 7 + counters
for h = 1, hashes do
  local hash = KEYS[2 + counters + h]
  local m = tonumber(head[at])
  for j = 1, m do
    redis.call('HINCRBY', hash, head[at + 2 * j - 1], head[at + 2 * j])
  end
  at = at + 2 * m + 1
  local f = tonumber(head[at])
  for j = 1, f do
    redis.call('HINCRBYFLOAT', hash, head[at + 2 * j - 1], head[at + 2 * j])
  end
  at = at + 2 * f + 1
end

-- The stream is trimmed once, after the call's events: it ends as capped as with XADD ... MAXLEN ~
-- each. The lines go to the history in one LPUSH (of many values, in order: the last ends at the
-- head), as if pushed one by one; each is still published on its own.
local lines = {}
for i = 0, n - 1 do
  local event, line = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  redis.call('XADD', stream, '*', 'event', event)
  if line ~= '' then
    redis.call('PUBLISH', channel, line)
    lines[#lines + 1] = line
  end
end
if n > 0 then
  redis.call('XTRIM', stream, 'MAXLEN', '~', maxlen)
end
if #lines > 0 then
  push_all(history, lines)
  redis.call('LTRIM', history, '0', history_last)
end
return n
