-- release_group: a group's running job has finished; free the group and move its next
-- pending job to the consumer end of the queue, where it runs next and claims the group.
--
-- KEYS[1] group-active SET   KEYS[2] the group's pending LIST   KEYS[3] base queue
-- ARGV[1] group id
-- Returns: 1 when a pending job was moved to the queue, else 0.
local group_active, pending, base = KEYS[1], KEYS[2], KEYS[3]

redis.call('SREM', group_active, ARGV[1])
local nxt = redis.call('LPOP', pending)
if not nxt then
  return 0
end
redis.call('RPUSH', base, nxt)
return 1
