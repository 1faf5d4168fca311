-- Shared by the scripts that push moved jobs (included with "--#include _push").

-- LPUSH values onto key in batches (unpack has a limit), in the order given: the last ends at
-- the head, so the first is fetched first.
local function push_all(key, values)
  for first = 1, #values, 1000 do
    redis.call('LPUSH', key, unpack(values, first, math.min(first + 999, #values)))
  end
end
