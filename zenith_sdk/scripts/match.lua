#!lua flags=no-writes
-- match: the jobs of one chunk of a list or delayed set that match a filter; read only. What
-- search and the dry run of a bulk operation call (the bulk script moves what it matches).
--
-- KEYS[1] source: a LIST (lane, failed, pending, processing) or a delayed ZSET
-- ARGV[1] source type: "list" or "zset"
-- ARGV[2] offset: entries of the source already walked (from the oldest end)
-- ARGV[3] chunk: entries to look at in this call   ARGV[4] filter JSON (see _filter.lua)
-- ARGV[5] sample size (matches returned)
-- Returns: {looked_at, matched, the first sample-size matches, oldest first}; the next offset is
-- offset + looked_at, and the walk is over when looked_at < chunk.
local source, kind = KEYS[1], ARGV[1]
local offset, chunk = tonumber(ARGV[2]), tonumber(ARGV[3])
local filter = cjson.decode(ARGV[4])
local sample_size = tonumber(ARGV[5])

--#include _filter
--#include _chunk

local entries = read_chunk(source, kind, offset, chunk)
local out = {#entries, 0}
local matched = 0
for position = #entries, 1, -1 do
  -- oldest first: in a list the oldest of the window is last; in a zset, reversed below
  local raw = entries[kind == 'list' and position or (#entries - position + 1)]
  if job_matches(raw, filter) then
    matched = matched + 1
    if matched <= sample_size then
      out[#out + 1] = raw
    end
  end
end
out[2] = matched
return out
