-- repair_group: let a stuck FIFO group go on, unless it changed since the caller saw it stuck.
-- A group is stuck when nothing of it is fetchable or running: held with no job anywhere, or
-- jobs pending while it is not held. Its next pending job becomes fetchable (the group held),
-- or a held group with nothing pending is freed.
--
-- KEYS[1] group set   KEYS[2] the group's pending LIST
-- KEYS[3..6] the lanes of the queue the released job goes to: critical, high, base, low
--            (may be omitted when nothing is pending)
-- ARGV[1] group id
-- ARGV[2] "1" if the caller saw the group held, else "0"
-- ARGV[3] the pending list's length the caller saw   ARGV[4] its first entry then ("" if empty)
-- Returns: 1 when a pending job was released, 0 when the group was freed, -1 when the group
--          changed since the caller looked (it is moving: nothing was done).
local active, pending = KEYS[1], KEYS[2]
local group, seen_held, seen_length, seen_head = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

--#include _group

local held = redis.call('SISMEMBER', active, group)
local length = redis.call('LLEN', pending)
local head = redis.call('LINDEX', pending, 0) or ''
if tostring(held) ~= seen_held or length ~= seen_length or head ~= seen_head then
  return -1
end
if length == 0 then
  redis.call('SREM', active, group)
  return 0
end
if not KEYS[3] then
  return redis.error_reply('repair_group needs the lanes of the queue a pending job goes to')
end
redis.call('SADD', active, group)
local nxt = redis.call('LPOP', pending)
redis.call('LPUSH', lane_of(nxt, {critical = KEYS[3], high = KEYS[4], base = KEYS[5], low = KEYS[6]}), nxt)
return 1
