-- events: record lifecycle events in one call: each goes to the capped events stream and,
-- when it has a log line, to the live log channel and the capped history list; finished
-- jobs are counted in per-minute throughput counters.
--
-- KEYS[1] events STREAM   KEYS[2] log history LIST   KEYS[3..] throughput counters, one per minute
-- ARGV[1] stream cap (approximate MAXLEN)   ARGV[2] live log channel (a channel, not a key)
-- ARGV[3] history cap   ARGV[4] throughput counter TTL in seconds   ARGV[5] number of events N
-- ARGV[6 .. 5+K] how many finished jobs to add to each throughput counter (K = #KEYS - 2)
-- then N pairs: the event JSON, the log line JSON ("" for none)
-- Returns: N.
local stream, history = KEYS[1], KEYS[2]
local maxlen, channel = ARGV[1], ARGV[2]
local history_cap, counter_ttl, n = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local counters = #KEYS - 2

for i = 1, counters do
  redis.call('INCRBY', KEYS[2 + i], ARGV[5 + i])
  redis.call('EXPIRE', KEYS[2 + i], counter_ttl)
end

local first = 6 + counters
local logged = 0
for i = 0, n - 1 do
  local event, line = ARGV[first + 2 * i], ARGV[first + 2 * i + 1]
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
