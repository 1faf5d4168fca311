#!lua flags=no-writes
-- count: the size of each key given, read only; a listing's counts in one call instead of one
-- command per key. In the cluster-safe layout the caller passes one queue's keys per call; in the
-- wire layout (a single Redis, never a cluster) one call may span many queues.
--
-- KEYS[i]  the keys to count
-- ARGV[1]  one letter per key, the read that counts KEYS[i]: L (LLEN), Z (ZCARD), S (SCARD) or
--          G (GET: a flag's value); one string rather than an argument per key halves what the
--          client encodes and Redis parses
-- Returns: one value per key, in order: a count, the flag's value (nil when absent), or -1
--          when the key holds another type than expected (it is then not counted)
local READS = {L = 'LLEN', Z = 'ZCARD', S = 'SCARD', G = 'GET'}
local codes = ARGV[1] or ''
if #codes ~= #KEYS then
  return redis.error_reply('count takes one read letter per key: ' .. #KEYS .. ' keys, ' .. #codes .. ' letters')
end
local out = {}
for i, key in ipairs(KEYS) do
  local code = string.sub(codes, i, i)
  local read = READS[code]
  if not read then
    return redis.error_reply('count reads with L (LLEN), Z (ZCARD), S (SCARD) or G (GET), not ' .. code)
  end
  local value = redis.pcall(read, key)
  if type(value) == 'table' and value.err then
    value = -1
  end
  out[i] = value
end
return out
