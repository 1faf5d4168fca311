-- Shared by the scripts that walk a list or a delayed set chunk by chunk (included with
-- "--#include _chunk").

-- Entries offset+1 .. offset+chunk of source counted from its oldest end: for a list, from the
-- tail (negative indexes, which pushes at the head do not move), newest first as LRANGE gives
-- them; for a zset, soonest due first.
local function read_chunk(source, kind, offset, chunk)
  if kind == 'list' then
    return redis.call('LRANGE', source, -(offset + chunk), -(offset + 1))
  end
  return redis.call('ZRANGE', source, offset, offset + chunk - 1)
end
