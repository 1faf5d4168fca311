-- claim_group: let a fetched job of a FIFO group run only if no other job of its group runs.
-- When the group is busy, the job leaves the processing list for the group's pending list.
--
-- KEYS[1] group-active SET   KEYS[2] the group's pending LIST   KEYS[3] processing list
-- ARGV[1] group id   ARGV[2] the payload exactly as fetched
-- Returns: 1 when the job may run now, 0 when it was parked in the pending list.
local group_active, pending, processing = KEYS[1], KEYS[2], KEYS[3]
local group_id, raw = ARGV[1], ARGV[2]

if redis.call('SADD', group_active, group_id) == 1 then
  return 1
end
if redis.call('LREM', processing, 1, raw) == 1 then
  redis.call('RPUSH', pending, raw)
end
return 0
