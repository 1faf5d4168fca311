-- settle: take a finished job out of a worker's processing list and, for a failure, either
-- schedule its retry (delayed ZSET, due after a delay) or dead-letter it (failed LIST, capped).
-- A job of a FIFO group that completed or was dead-lettered releases its group; a retried one
-- keeps it (it is still the group's one job). Does nothing when the job is no longer in the
-- processing list (another process recovered it), so a job is never both settled and recovered.
--
-- KEYS[1] processing list
-- KEYS[2] target: delayed ZSET (mode "retry") or failed LIST (mode "dead"); any key for "ack"
-- KEYS[3..8] for a grouped job only: group set, the group's pending LIST, then the lanes of the
--            queue: critical, high, base, low
-- ARGV[1] the payload exactly as fetched   ARGV[2] the payload to write ("" for "ack")
-- ARGV[3] mode: "ack", "retry" or "dead"
-- ARGV[4] retry delay in ms (mode "retry") or list cap (mode "dead"); ignored for "ack"
-- ARGV[5] group id, or "" when the job has none
-- Returns: 1 when settled, 0 when the job was not in the processing list.
local processing, target = KEYS[1], KEYS[2]
local fetched, updated, mode, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local group = ARGV[5] or ''

--#include _group

if redis.call('LREM', processing, 1, fetched) == 0 then
  return 0
end
if mode == 'retry' then
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', target, now_ms + n, updated)
elseif mode == 'dead' then
  redis.call('LPUSH', target, updated)
  redis.call('LTRIM', target, 0, n - 1)
end
if group ~= '' and mode ~= 'retry' then
  release(KEYS[3], KEYS[4], group, {critical = KEYS[5], high = KEYS[6], base = KEYS[7], low = KEYS[8]})
end
return 1
