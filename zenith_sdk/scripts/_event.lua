-- Shared by the scripts that move jobs for an operator (included with "--#include _event"): one
-- event per job moved (retried, deleted or promoted; PROTOCOL 8.4), appended to the events
-- stream in the same call as the move, or collected for the caller to append when the stream
-- is in another hash slot (the cluster-safe layout). The caller encodes what every event of
-- the call shares: the head (type, queue, timestamp) and the tail (actor, protocol version);
-- the script puts each job's id and name between them, as canonical JSON (PROTOCOL 2.1).
--
-- new_job_events(head, tail, stream, maxlen): head "" for no events; stream nil to leave them
-- to the caller. job_moved(events, job) builds the event of one moved job, decoded as job;
-- append_job_events(events), once the jobs are moved, appends them to the stream, or returns
-- them (a list of event JSON texts) when there is no stream.

-- What each character that JSON must escape is written as: the short forms, else \u00XX.
local JSON_ESCAPES = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}
for byte = 0, 31 do
  local c = string.char(byte)
  JSON_ESCAPES[c] = JSON_ESCAPES[c] or string.format('\\u%04x', byte)
end
local MUST_ESCAPE = '[%z\1-\31"\\]'

-- text as a JSON string: quotes, backslashes and control characters escaped, all else as it is.
local function json_string(text)
  if not string.find(text, MUST_ESCAPE) then
    return '"' .. text .. '"'
  end
  return '"' .. string.gsub(text, MUST_ESCAPE, JSON_ESCAPES) .. '"'
end

-- Whether the continuation bytes of the character starting at i are in [low, high] then 80..BF.
local function continues(text, i, count, low, high)
  local b = string.byte(text, i + 1)
  if not b or b < low or b > high then
    return false
  end
  for k = 2, count do
    b = string.byte(text, i + k)
    if not b or b < 0x80 or b > 0xBF then
      return false
    end
  end
  return true
end

-- Whether text is well-formed UTF-8 (no surrogates, nothing over U+10FFFF, shortest forms).
local function valid_utf8(text)
  if not string.find(text, '[\128-\255]') then
    return true
  end
  local i, n = 1, #text
  while i <= n do
    local c = string.byte(text, i)
    local count, low, high = 0, 0x80, 0xBF
    if c < 0x80 then
      count = 0
    elseif c >= 0xC2 and c <= 0xDF then
      count = 1
    elseif c >= 0xE0 and c <= 0xEF then
      count = 2
      low = c == 0xE0 and 0xA0 or 0x80
      high = c == 0xED and 0x9F or 0xBF
    elseif c >= 0xF0 and c <= 0xF4 then
      count = 3
      low = c == 0xF0 and 0x90 or 0x80
      high = c == 0xF4 and 0x8F or 0xBF
    else
      return false
    end
    if count > 0 and not continues(text, i, count, low, high) then
      return false
    end
    i = i + count + 1
  end
  return true
end

-- The job's name as PROTOCOL 4.2 reads it: data.job, else data.class (a non-empty string), else className.
local function payload_name(job)
  if type(job.data) == 'string' then
    local ok, data = pcall(cjson.decode, job.data)
    if ok and type(data) == 'table' then
      for _, key in ipairs({'job', 'class'}) do
        if type(data[key]) == 'string' and data[key] ~= '' then
          return data[key]
        end
      end
    end
  end
  if type(job.className) == 'string' then
    return job.className
  end
  return nil
end

-- The job's name as canonical JSON, or nil when it has none. Read without decoding data when data
-- starts with it, as producers write it ({"job":"name", or {"class":"name",), the name needs no
-- escape, and no later member could take precedence (no "job", nor the same key again); else
-- data is decoded and the name escaped.
local function name_json(job)
  local data = job.data
  if type(data) == 'string' then
    local key, name = string.match(data, '^{"(%l+)":"([^"\\]+)"')
    local after = key and #key + #name + 6
    if (key == 'job' or key == 'class') and not string.find(data, '"' .. key .. '"', after, true)
      and not string.find(data, '"job"', after, true) and not string.find(name, '[%z\1-\31]') and valid_utf8(name) then
      return '"' .. name .. '"'
    end
  end
  local name = payload_name(job)
  if name and valid_utf8(name) then
    return json_string(name)
  end
  return nil
end

local function new_job_events(head, tail, stream, maxlen)
  return {head = head, tail = tail, stream = stream, maxlen = maxlen, out = {}}
end

-- A job whose id is not a string of valid UTF-8 gets no event (no reader could decode it).
local function job_moved(events, job)
  if events.head == '' or type(job) ~= 'table' or type(job.id) ~= 'string' or not valid_utf8(job.id) then
    return
  end
  local name = name_json(job)
  local event
  if name then
    event = events.head .. ',"jobId":' .. json_string(job.id) .. ',"jobName":' .. name .. events.tail
  else
    event = events.head .. ',"jobId":' .. json_string(job.id) .. events.tail
  end
  events.out[#events.out + 1] = event
end

-- Appended one by one, then trimmed once: the stream ends as capped as with XADD ... MAXLEN ~.
local function append_job_events(events)
  if not events.stream then
    return events.out
  end
  for _, event in ipairs(events.out) do
    redis.call('XADD', events.stream, '*', 'event', event)
  end
  if #events.out > 0 then
    redis.call('XTRIM', events.stream, 'MAXLEN', '~', events.maxlen)
  end
  return {}
end
