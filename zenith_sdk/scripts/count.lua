-- count: the size of each key given, read only; a listing's counts in one call instead of one
-- command per key. In the cluster-safe layout the caller passes one queue's keys per call; in the
-- wire layout (a single Redis, never a cluster) one call may span many queues.
--
-- KEYS[i] the keys to count
-- ARGV[i] how to count KEYS[i]: "l" LLEN, "z" ZCARD, "s" SCARD, or "g" GET (a flag's value)
-- Returns: one value per key, in order: a count, the flag's value (nil when absent), or -1
--          when the key holds another type than expected (it is then not counted)
local out = {}
local commands = {l = 'LLEN', z = 'ZCARD', s = 'SCARD', g = 'GET'}
for i, key in ipairs(KEYS) do
  local value = redis.pcall(commands[ARGV[i]], key)
  if type(value) == 'table' and value.err then
    value = -1
  end
  out[i] = value
end
return out
