-- settle: take a failed job out of a worker's processing list and either schedule its
-- retry (delayed ZSET, due after a delay) or dead-letter it (failed LIST, capped).
-- Does nothing when the job is no longer in the processing list (another process
-- recovered it), so a job is never both retried and recovered.
--
-- KEYS[1] processing list   KEYS[2] target: delayed ZSET (mode "retry") or failed LIST (mode "dead")
-- ARGV[1] the payload exactly as fetched   ARGV[2] the payload to write
-- ARGV[3] mode: "retry" or "dead"   ARGV[4] retry delay in ms (mode "retry") or list cap (mode "dead")
-- Returns: 1 when settled, 0 when the job was not in the processing list.
local processing, target = KEYS[1], KEYS[2]
local fetched, updated, mode, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])

if redis.call('LREM', processing, 1, fetched) == 0 then
  return 0
end
if mode == 'retry' then
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', target, now_ms + n, updated)
else
  redis.call('LPUSH', target, updated)
  redis.call('LTRIM', target, 0, n - 1)
end
return 1
