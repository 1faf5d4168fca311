-- fetch: move up to N waiting jobs of one queue into a worker's processing list, after
-- promoting each lane's due delayed jobs into that lane. Nothing moves while the queue is
-- paused (the base lane's flag); a lane whose own flag is set is skipped, delayed set included.
--
-- KEYS[1..4]  the lanes in poll order: critical, high, base, low
-- KEYS[5..8]  their delayed ZSETs, same order   KEYS[9..12] their paused flags, same order
-- KEYS[13] processing list (this worker, this queue)
-- KEYS[14] rate-limit counter of the current window (ignored when ARGV[3] is 0)
-- ARGV[1] max jobs to fetch   ARGV[2] max delayed jobs to promote
-- ARGV[3] rate limit: max jobs per window (0 = none)   ARGV[4] window length in seconds
-- Returns: for each fetched job, oldest first, the number of its lane (1..4, as in KEYS) and its
--          exact bytes: {lane, raw, lane, raw, ...}; when it fetches nothing, {0, due, watch}: due is
--          the number of ms until the earliest delayed job of an open lane is due (-1: none), watch
--          is 1 when the base list is empty (a blocking wait on it returns on the next push), else 0
--          (the queue is paused or rate-limited with jobs waiting: such a wait would return at once).
local BASE = 3
local processing, ratelimit = KEYS[13], KEYS[14]
local want, promote_max = tonumber(ARGV[1]), tonumber(ARGV[2])
local limit, window_s = tonumber(ARGV[3]), tonumber(ARGV[4])

local function nothing(due)
  return {0, due, redis.call('LLEN', KEYS[BASE]) == 0 and 1 or 0}
end

if redis.call('GET', KEYS[8 + BASE]) == '1' then
  return nothing(-1)
end
local open = {}
for lane = 1, 4 do
  open[lane] = lane == BASE or redis.call('GET', KEYS[8 + lane]) ~= '1'
end

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local budget = promote_max
for lane = 1, 4 do
  if open[lane] and budget > 0 then
    local delayed = KEYS[4 + lane]
    local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now_ms, 'LIMIT', 0, budget)
    for _, raw in ipairs(due) do
      redis.call('ZREM', delayed, raw)
      redis.call('LPUSH', KEYS[lane], raw)
    end
    budget = budget - #due
  end
end

if limit > 0 then
  local used = tonumber(redis.call('GET', ratelimit) or '0')
  want = math.min(want, limit - used)
  if want <= 0 then
    return nothing(-1)
  end
end

local out, fetched = {}, 0
for lane = 1, 4 do
  while open[lane] and fetched < want do
    local raw = redis.call('LMOVE', KEYS[lane], processing, 'RIGHT', 'LEFT')
    if not raw then
      break
    end
    out[#out + 1] = lane
    out[#out + 1] = raw
    fetched = fetched + 1
  end
end

if fetched == 0 then
  local due = -1
  for lane = 1, 4 do
    if open[lane] then
      local first = redis.call('ZRANGE', KEYS[4 + lane], 0, 0, 'WITHSCORES')
      if first[2] then
        local wait = math.max(0, tonumber(first[2]) - now_ms)
        if due < 0 or wait < due then
          due = wait
        end
      end
    end
  end
  return nothing(due)
end
if limit > 0 then
  redis.call('INCRBY', ratelimit, fetched)
  redis.call('EXPIRE', ratelimit, window_s)
end
return out
