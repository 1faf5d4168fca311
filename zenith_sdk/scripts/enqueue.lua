-- enqueue: push one job of a FIFO group: fetchable at once when its group is free, else it
-- waits at the end of the group's pending list (the Node producer's group push).
--
-- KEYS[1] the lane LIST the job goes to   KEYS[2] group set   KEYS[3] the group's pending LIST
-- ARGV[1] the job JSON   ARGV[2] group id
-- Returns: 1 when the job is fetchable now, 0 when it waits behind its group.
local lane, active, pending = KEYS[1], KEYS[2], KEYS[3]
local raw, group = ARGV[1], ARGV[2]

--#include _group

return admit(active, pending, group, lane, raw)
