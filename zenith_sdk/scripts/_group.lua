-- Shared by the scripts that put jobs into lanes and keep FIFO groups (included with
-- "--#include _group"). A group id is held (a member of the group set) from the push of its
-- first job until its last job is done; exactly one job of a held group is fetchable or
-- running at a time (in a lane, a delayed set as a retry, or a processing list), the others
-- wait in the group's pending list in push order. This is what the Node producer does.
--
-- lanes: {critical = key, high = key, base = key, low = key}, the lane lists of one queue, and
-- optionally fallback = key: where a job whose priority names no lane goes (default: base).

local POLLED = {critical = true, high = true, low = true}

-- The lane a decoded job's "priority" names when that lane is polled, else the fallback lane.
local function lane_of_job(job, lanes)
  if type(job) == 'table' and type(job.priority) == 'string' and POLLED[job.priority] then
    return lanes[job.priority]
  end
  return lanes.fallback or lanes.base
end

-- The same for a job's bytes (the base list when they do not decode).
local function lane_of(raw, lanes)
  local ok, job = pcall(cjson.decode, raw)
  return lane_of_job(ok and job or nil, lanes)
end

-- A job of a group is ready to run (pushed, or retried by an operator): it becomes the group's
-- fetchable job when the group is free, else it waits at the end of the group's pending list.
-- Returns 1 when it is fetchable now, 0 when it waits.
local function admit(active, pending, group, lane, raw)
  if redis.call('SISMEMBER', active, group) == 1 then
    redis.call('RPUSH', pending, raw)
    return 0
  end
  redis.call('SADD', active, group)
  redis.call('LPUSH', lane, raw)
  return 1
end

-- A group's fetchable or running job is gone for good (completed, dead-lettered, deleted): the
-- next pending job becomes fetchable and the group stays held, or the group is freed.
-- Returns 1 when a pending job was released, else 0.
local function release(active, pending, group, lanes)
  local nxt = redis.call('LPOP', pending)
  if nxt then
    redis.call('LPUSH', lane_of(nxt, lanes), nxt)
    return 1
  end
  redis.call('SREM', active, group)
  return 0
end
