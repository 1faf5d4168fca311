-- events: record lifecycle events in one call: each goes to the capped events stream; the log
-- lines go to the live log channel and the capped history list; finished jobs are counted in
-- per-minute throughput counters and in the per-queue counters hashes.
--
-- KEYS[1] events STREAM   KEYS[2] log history LIST   KEYS[3 .. 2+K] throughput counters, one per minute
-- KEYS[3+K ..] counters HASHes, one per queue (C of them)
-- ARGV[1] the head, a JSON array of strings: [1] stream cap (approximate MAXLEN), [2] live log channel
--   (a channel, not a key), [3] last history index kept (the history cap - 1), [4] throughput counter
--   TTL in seconds, [5] number of events N, [6] number of counters hashes C (K = #KEYS - 2 - C),
--   [7 .. 6+K] how many finished jobs to add to each throughput counter, then per counters hash:
--   M, M pairs (field, integer to add), F, F pairs (field, float to add)
-- ARGV[2] the N events' JSON texts, in order, each ended by a newline ("\n")
-- ARGV[3] the log lines' JSON texts, in order, each ended by a newline ("" for none)
-- Returns: N.
--
-- The head is one argument, not one each, and so are the events and the lines: every argument
-- costs the caller and the server more than its bytes do. A JSON text holds no raw newline (one
-- in a string is escaped, and compact JSON has no whitespace), so a newline ends each safely.
-- The head's numbers are strings, which redis.call passes on as they are (a Lua number would be
-- formatted again, slowly, and only exactly up to 2^53).
local stream, history = KEYS[1], KEYS[2]
local head = cjson.decode(ARGV[1])
local maxlen, channel, history_last, counter_ttl = head[1], head[2], head[3], head[4]
local hashes = tonumber(head[6])
local counters = #KEYS - 2 - hashes

--#include _push

for i = 1, counters do
  redis.call('INCRBY', KEYS[2 + i], head[6 + i])
  redis.call('EXPIRE', KEYS[2 + i], counter_ttl)
end

local at = 7 + counters
for h = 1, hashes do
  local hash = KEYS[2 + counters + h]
  local m = tonumber(head[at])
  for j = 1, m do
    redis.call('HINCRBY', hash, head[at + 2 * j - 1], head[at + 2 * j])
  end
  at = at + 2 * m + 1
  local f = tonumber(head[at])
  for j = 1, f do
    redis.call('HINCRBYFLOAT', hash, head[at + 2 * j - 1], head[at + 2 * j])
  end
  at = at + 2 * f + 1
end

-- Each text of a blob (ARGV[2] or ARGV[3]), in order: the texts end with a newline.
local find, sub = string.find, string.sub
local function texts(blob)
  local found, at = {}, 1
  while at <= #blob do
    local stop = find(blob, '\n', at, true) or #blob + 1
    found[#found + 1] = sub(blob, at, stop - 1)
    at = stop + 1
  end
  return found
end

-- The stream is trimmed once, after the call's events: it ends as capped as with XADD ... MAXLEN ~
-- each. The lines go to the history in one LPUSH (of many values, in order: the last ends at the
-- head), as if pushed one by one; each is still published on its own.
local events = texts(ARGV[2])
for i = 1, #events do
  redis.call('XADD', stream, '*', 'event', events[i])
end
if #events > 0 then
  redis.call('XTRIM', stream, 'MAXLEN', '~', maxlen)
end
local lines = texts(ARGV[3])
for i = 1, #lines do
  redis.call('PUBLISH', channel, lines[i])
end
if #lines > 0 then
  push_all(history, lines)
  redis.call('LTRIM', history, '0', history_last)
end
return #events
