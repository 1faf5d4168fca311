#!lua flags=no-writes
-- groups: the FIFO group ids of one chunk of a list or delayed set, read only. What finds
-- which queue a group's jobs are in (the group keys are global in the wire layout) and which
-- held groups have no job left anywhere. Only entries that mention "groupId" are decoded.
--
-- KEYS[1] source: a LIST or a ZSET
-- ARGV[1] source type: "list" or "zset"   ARGV[2] offset from the oldest end   ARGV[3] chunk
-- Returns: {looked_at, the group id of each entry that has one...}
local source, kind = KEYS[1], ARGV[1]
local offset, chunk = tonumber(ARGV[2]), tonumber(ARGV[3])

--#include _chunk

local entries = read_chunk(source, kind, offset, chunk)
local out = {#entries}
for _, raw in ipairs(entries) do
  if string.find(raw, '"groupId"', 1, true) then
    local ok, job = pcall(cjson.decode, raw)
    if ok and type(job) == 'table' and type(job.groupId) == 'string' and job.groupId ~= '' then
      out[#out + 1] = job.groupId
    end
  end
end
return out
