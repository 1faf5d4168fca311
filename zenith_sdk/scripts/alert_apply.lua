-- alert_apply: the compare-and-set of one alert evaluation. Each changed state is written only
-- if the stored state still holds the exact bytes the evaluator read (its seq among them), so
-- of several evaluators racing, exactly one wins each change. Each notification goes to the
-- outbox with the subjects whose states were written (none: not written); its id is that of its
-- first such subject. The transitions of the states written go to the history list and, as
-- `alert` lifecycle events, to the events stream (or are returned, when it is not given).
--
-- KEYS[1] states HASH   KEYS[2] outbox STREAM   KEYS[3] history LIST   KEYS[4] events STREAM (optional)
-- ARGV[1] outbox cap (approximate MAXLEN)   ARGV[2] history cap   ARGV[3] events stream cap
-- ARGV[4] S states   ARGV[5] T transitions   ARGV[6] N notifications, then:
--   S triples: hash field, the bytes read ("" = absent), the new bytes ("" = delete the field)
--   T triples: the index (1-based) of its state, the transition JSON, the event JSON
--   N groups: k subjects, the JSON before the id's text, the JSON between the id's text and the
--     subjects, the JSON after the subjects, then k triples: the index of its state, the id's
--     text when it comes first (JSON-escaped), the subject JSON
-- Returns: {states written, notifications written, {events JSON not appended (no KEYS[4])}}.
local states, outbox, history, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local outbox_cap, history_cap, events_cap = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local s, t, n = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

local passed = {}
local written = 0
local at = 7
for i = 1, s do
  local field, expected, value = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  at = at + 3
  local current = redis.call('HGET', states, field)
  if (current or '') == expected then
    passed[i] = true
    written = written + 1
    if value == '' then
      redis.call('HDEL', states, field)
    else
      redis.call('HSET', states, field, value)
    end
  end
end

local returned = {}
local pushed = 0
for _ = 1, t do
  local index, transition, event = tonumber(ARGV[at]), ARGV[at + 1], ARGV[at + 2]
  at = at + 3
  if passed[index] then
    redis.call('LPUSH', history, transition)
    pushed = pushed + 1
    if event ~= '' then
      if events then
        redis.call('XADD', events, 'MAXLEN', '~', events_cap, '*', 'event', event)
      else
        returned[#returned + 1] = event
      end
    end
  end
end
if pushed > 0 then
  redis.call('LTRIM', history, 0, history_cap - 1)
end

local notified = 0
for _ = 1, n do
  local k, head, middle, tail = tonumber(ARGV[at]), ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
  at = at + 4
  local id, subjects = nil, {}
  for _ = 1, k do
    local index, candidate, subject = tonumber(ARGV[at]), ARGV[at + 1], ARGV[at + 2]
    at = at + 3
    if passed[index] then
      id = id or candidate
      subjects[#subjects + 1] = subject
    end
  end
  if id then
    local body = head .. id .. middle .. table.concat(subjects, ',') .. tail
    redis.call('XADD', outbox, 'MAXLEN', '~', outbox_cap, '*', 'notification', body)
    notified = notified + 1
  end
end
return {written, notified, returned}
