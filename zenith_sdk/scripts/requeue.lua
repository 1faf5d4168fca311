-- requeue: put up to N jobs of a processing list back at the consumer end of their lane,
-- so they run next (used on shutdown and to recover a dead worker's in-flight jobs).
-- Each job's group (if any) is released, since the job will claim it again when it runs.
--
-- KEYS[1] processing list   KEYS[2] critical lane   KEYS[3] high lane   KEYS[4] base queue
-- KEYS[5] low lane          KEYS[6] group-active SET
-- ARGV[1] max jobs to move in this call
-- Returns: the number of jobs moved (call again while it equals ARGV[1]).
local processing, base, group_active = KEYS[1], KEYS[4], KEYS[6]
local lanes = {critical = KEYS[2], high = KEYS[3], low = KEYS[5]}
local batch = tonumber(ARGV[1])

local moved = 0
while moved < batch do
  -- Fetches push on the left, so the newest is popped first and the oldest is pushed last:
  -- it lands at the consumer end and runs first, as it would have.
  local raw = redis.call('LPOP', processing)
  if not raw then
    break
  end
  local target = base
  local ok, job = pcall(cjson.decode, raw)
  if ok and type(job) == 'table' then
    if type(job.priority) == 'string' and lanes[job.priority] then
      target = lanes[job.priority]
    end
    if type(job.groupId) == 'string' then
      redis.call('SREM', group_active, job.groupId)
    end
  end
  redis.call('RPUSH', target, raw)
  moved = moved + 1
end
return moved
