#!lua flags=no-writes
-- count: the size of each key given, read only; a listing's counts in one call instead of one
-- command per key. In the cluster-safe layout the caller passes one queue's keys per call; in the
-- wire layout (a single Redis, never a cluster) one call may span many queues.
--
-- KEYS[i] the keys to count
-- ARGV[i] the read that counts KEYS[i]: "LLEN", "ZCARD", "SCARD", or "GET" (a flag's value)
-- Returns: one value per key, in order: a count, the flag's value (nil when absent), or -1
--          when the key holds another type than expected (it is then not counted)
local READS = {LLEN = true, ZCARD = true, SCARD = true, GET = true}
local out = {}
for i, key in ipairs(KEYS) do
  local read = ARGV[i]
  if not READS[read] then
    return redis.error_reply('count reads with LLEN, ZCARD, SCARD or GET, not ' .. tostring(read))
  end
  local value = redis.pcall(read, key)
  if type(value) == 'table' and value.err then
    value = -1
  end
  out[i] = value
end
return out
