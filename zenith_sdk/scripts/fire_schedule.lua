-- fire_schedule: fire one due run of a cron schedule, exactly once however many tickers race.
-- The caller read the run's score, computed the next run and the job bytes; this script only
-- fires if nobody else did since: the score is unchanged and the per-run lock is free.
--
-- KEYS[1] schedules index ZSET   KEYS[2] the schedule HASH   KEYS[3] lock of this run (STRING)
-- KEYS[4] target lane LIST (omitted in the cluster-safe layout: the caller pushes after a 1)
-- KEYS[5] group set, KEYS[6] the group's pending LIST: only with KEYS[4], for a grouped job
-- ARGV[1] schedule id            ARGV[2] expected score (the due run's ms, as read)
-- ARGV[3] now (ms)               ARGV[4] next run (ms)
-- ARGV[5] job JSON to push (exact bytes, never re-encoded here)
-- ARGV[6] lock TTL in seconds    ARGV[7] the job's group id, or "" when it has none
-- Returns: 1 if this call fired the run, 0 if it was already fired, re-scored, paused or removed.
local index, schedule, lock, lane = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, expected, now, next_run = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local job, lock_ttl, group = ARGV[5], ARGV[6], ARGV[7] or ''

--#include _group

-- Compare-and-set on the score: a ticker that fired, a pause (ZREM), a removal or a resume
-- (new score) since the caller's read all make this run stale.
local score = redis.call('ZSCORE', index, id)
if not score or tonumber(score) ~= tonumber(expected) then
  return 0
end
if not redis.call('SET', lock, '1', 'NX', 'EX', lock_ttl) then
  return 0
end
if lane and group ~= '' then
  admit(KEYS[5], KEYS[6], group, lane, job)
elseif lane then
  redis.call('LPUSH', lane, job)
end
redis.call('HSET', schedule, 'lastRun', now, 'nextRun', next_run)
redis.call('ZADD', index, next_run, id)
return 1
