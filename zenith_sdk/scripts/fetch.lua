-- fetch: move up to N waiting jobs of one queue into a worker's processing list,
-- after promoting the queue's due delayed jobs. Nothing moves while the queue is paused.
--
-- KEYS[1] critical lane   KEYS[2] high lane   KEYS[3] base queue   KEYS[4] low lane
-- KEYS[5] delayed ZSET    KEYS[6] paused flag KEYS[7] processing list (this worker, this queue)
-- KEYS[8] rate-limit counter of the current window (ignored when ARGV[3] is 0)
-- ARGV[1] max jobs to fetch   ARGV[2] max delayed jobs to promote
-- ARGV[3] rate limit: max jobs per window (0 = none)   ARGV[4] window length in seconds
-- Returns: the fetched raw payloads, oldest first (possibly none).
local critical, high, base, low = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local delayed, paused, processing, ratelimit = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local want, promote_max = tonumber(ARGV[1]), tonumber(ARGV[2])
local limit, window_s = tonumber(ARGV[3]), tonumber(ARGV[4])

if redis.call('GET', paused) == '1' then
  return {}
end

local lanes = {critical = critical, high = high, low = low}
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now_ms, 'LIMIT', 0, promote_max)
for _, raw in ipairs(due) do
  local target = base
  local ok, job = pcall(cjson.decode, raw)
  if ok and type(job) == 'table' and type(job.priority) == 'string' and lanes[job.priority] then
    target = lanes[job.priority]
  end
  redis.call('ZREM', delayed, raw)
  redis.call('LPUSH', target, raw)
end

if limit > 0 then
  local used = tonumber(redis.call('GET', ratelimit) or '0')
  want = math.min(want, limit - used)
  if want <= 0 then
    return {}
  end
end

local out = {}
for _, lane in ipairs({critical, high, base, low}) do
  while #out < want do
    local raw = redis.call('LMOVE', lane, processing, 'RIGHT', 'LEFT')
    if not raw then
      break
    end
    out[#out + 1] = raw
  end
end

if limit > 0 and #out > 0 then
  redis.call('INCRBY', ratelimit, #out)
  redis.call('EXPIRE', ratelimit, window_s)
end
return out
