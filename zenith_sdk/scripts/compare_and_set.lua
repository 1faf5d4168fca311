-- compare_and_set: replace a STRING only if it still holds what the caller read (PROTOCOL 10.1):
-- a read-modify-write of alert rules or settings that loses no concurrent edit.
--
-- KEYS[1] the STRING
-- ARGV[1] "1" when the caller read a value, "0" when the key was absent
-- ARGV[2] the value read (ignored when ARGV[1] is "0")
-- ARGV[3] the new value
-- Returns: 1 when written, 0 when the key changed since the read (then nothing is written).
local key = KEYS[1]
local had, expected, value = ARGV[1], ARGV[2], ARGV[3]

local current = redis.call('GET', key)
if had == '1' then
  if current ~= expected then
    return 0
  end
elseif current then
  return 0
end
redis.call('SET', key, value)
return 1
