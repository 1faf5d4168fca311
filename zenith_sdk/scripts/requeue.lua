-- requeue: put up to N jobs of a processing list back at the consumer end of their lane,
-- so they run next (used on shutdown and to recover a dead worker's in-flight jobs).
-- A job of a FIFO group keeps its group: it is still the group's one fetchable job.
--
-- KEYS[1] processing list   KEYS[2] critical lane   KEYS[3] high lane   KEYS[4] base queue
-- KEYS[5] low lane
-- ARGV[1] max jobs to move in this call
-- Returns: the number of jobs moved (call again while it equals ARGV[1]).
local processing = KEYS[1]
local lanes = {critical = KEYS[2], high = KEYS[3], base = KEYS[4], low = KEYS[5]}
local batch = tonumber(ARGV[1])

--#include _group

local moved = 0
while moved < batch do
  -- Fetches push on the left, so the newest is popped first and the oldest is pushed last:
  -- it lands at the consumer end and runs first, as it would have.
  local raw = redis.call('LPOP', processing)
  if not raw then
    break
  end
  redis.call('RPUSH', lane_of(raw, lanes), raw)
  moved = moved + 1
end
return moved
