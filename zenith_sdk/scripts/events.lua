-- events: record lifecycle events in one call: each goes to the capped events stream and,
-- when it has a log line, to the live log channel and the capped history list; finished
-- jobs are counted in per-minute throughput counters and in the per-queue counters hashes.
--
-- KEYS[1] events STREAM   KEYS[2] log history LIST   KEYS[3 .. 2+K] throughput counters, one per minute
-- KEYS[3+K ..] counters HASHes, one per queue (C of them)
-- ARGV[1] stream cap (approximate MAXLEN)   ARGV[2] live log channel (a channel, not a key)
-- ARGV[3] history cap   ARGV[4] throughput counter TTL in seconds   ARGV[5] number of events N
-- ARGV[6] number of counters hashes C (K = #KEYS - 2 - C)
-- ARGV[7 .. 6+K] how many finished jobs to add to each throughput counter
-- then, per counters hash: M, M pairs (field, integer to add), F, F pairs (field, float to add)
-- then N pairs: the event JSON, the log line JSON ("" for none)
-- Returns: N.
local stream, history = KEYS[1], KEYS[2]
local maxlen, channel = ARGV[1], ARGV[2]
local history_cap, counter_ttl, n = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local hashes = tonumber(ARGV[6])
local counters = #KEYS - 2 - hashes

for i = 1, counters do
  redis.call('INCRBY', KEYS[2 + i], ARGV[6 + i])
  redis.call('EXPIRE', KEYS[2 + i], counter_ttl)
end

local at = 7 + counters
for h = 1, hashes do
  local hash = KEYS[2 + counters + h]
  local m = tonumber(ARGV[at])
  for j = 1, m do
    redis.call('HINCRBY', hash, ARGV[at + 2 * j - 1], ARGV[at + 2 * j])
  end
  at = at + 2 * m + 1
  local f = tonumber(ARGV[at])
  for j = 1, f do
    redis.call('HINCRBYFLOAT', hash, ARGV[at + 2 * j - 1], ARGV[at + 2 * j])
  end
  at = at + 2 * f + 1
end

local logged = 0
for i = 0, n - 1 do
  local event, line = ARGV[at + 2 * i], ARGV[at + 2 * i + 1]
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'event', event)
  if line ~= '' then
    redis.call('PUBLISH', channel, line)
    redis.call('LPUSH', history, line)
    logged = logged + 1
  end
end
if logged > 0 then
  redis.call('LTRIM', history, 0, history_cap - 1)
end
return n
