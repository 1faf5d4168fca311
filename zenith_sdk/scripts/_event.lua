-- Shared by the scripts that move jobs for an operator (included with "--#include _event"): one
-- event per job moved (retried, deleted or promoted; PROTOCOL 8.4), appended to the events
-- stream in the same call as the move, or collected for the caller to append when the stream
-- is in another hash slot (the cluster-safe layout). The caller encodes what every event of
-- the call shares: the head (type, queue, timestamp) and the tail (actor, protocol version);
-- the script puts each job's id and name between them, as canonical JSON (PROTOCOL 2.1).
--
-- new_job_events(head, tail, stream, maxlen): head "" for no events; stream nil to leave them
-- to the caller. job_moved(events, job) appends the event of one moved job, decoded as job, to
-- the stream (or keeps it); job_moved_in(events, slot) does the same with the id and name that
-- the caller encoded (slot: ',"jobId":...,"jobName":...', as zenith_sdk/control/_job_events.py
-- writes it); append_job_events(events), once the jobs are moved, trims the stream, or returns
-- the events kept (a list of event JSON texts) when there is no stream. Needs _json included
-- before it.

local find, sub, byte, match = string.find, string.sub, string.byte, string.match

-- The job's name as PROTOCOL 4.2 reads it: data.job, else data.class (a non-empty string), else
-- className. data is a string holding a JSON object, or (PROTOCOL 4.1) that object itself.
local function payload_name(job)
  local data = job.data
  if type(data) == 'string' then
    local ok, decoded = pcall(cjson.decode, data)
    data = ok and decoded or nil
  end
  if type(data) == 'table' then
    for _, key in ipairs({'job', 'class'}) do
      if type(data[key]) == 'string' and data[key] ~= '' then
        return data[key]
      end
    end
  end
  if type(job.className) == 'string' then
    return job.className
  end
  return nil
end

local NAME_MEMBER = '^{[ \t\n\r]*"(%l+)"[ \t\n\r]*:[ \t\n\r]*"()'
local NAME_KEYS = {job = '"job"', class = '"class"'}

-- Names already found verbatim in this call: the jobs of one operation mostly share a few names.
local VERBATIM_NAMES, verbatim_names = {}, 0

local function verbatim_name(quoted)
  if VERBATIM_NAMES[quoted] then
    return true
  end
  if not verbatim_json_text(quoted) then
    return false
  end
  if verbatim_names < 100 then
    VERBATIM_NAMES[quoted], verbatim_names = true, verbatim_names + 1
  end
  return true
end

-- The job's name as canonical JSON, or nil when it has none. Read without decoding data when
-- data starts with it, as producers write it ({"job":"name", or {"class": "name", ...), no later
-- member could take precedence (no "job", nor the same key again, nor a key written with a \u
-- escape), and its text is already canonical: valid UTF-8, no control character, no escape but
-- \" and \\. Else data is decoded and the name escaped.
local function name_json(job)
  local data = job.data
  if type(data) == 'string' then
    local key, first = match(data, NAME_MEMBER)
    local quoted_key = NAME_KEYS[key]
    local close = quoted_key and string_end(data, first - 1)
    if close and close > first and byte(data, close) == 34 then
      local quoted = sub(data, first - 1, close)
      if not find(data, quoted_key, close, true) and not find(data, '"job"', close, true)
        and not find(data, '\\u', close, true) and verbatim_name(quoted) then
        return quoted
      end
    end
  end
  local name = payload_name(job)
  if name and valid_utf8(name) then
    return json_string(name)
  end
  return nil
end

local function new_job_events(head, tail, stream, maxlen)
  return {head = head, tail = tail, stream = stream, maxlen = maxlen, out = {}, count = 0}
end

-- The id as canonical JSON, or nil when it is not a string of valid UTF-8 (no reader could decode
-- the event). Ids as producers make them (letters, digits, - _ . :) are settled by one anchored
-- match, the cheapest test there is.
local function id_json(id)
  if type(id) ~= 'string' then
    return nil
  elseif find(id, '^[%w%-_.:]*$') or not find(id, '[%z\1-\31"\\\128-\255]') then
    return '"' .. id .. '"'
  elseif valid_utf8(id) then
    return json_string(id)
  end
  return nil
end

local function appended(events, event)
  events.count = events.count + 1
  if events.stream then
    redis.call('XADD', events.stream, '*', 'event', event)
  else
    events.out[events.count] = event
  end
end

-- A job whose id is not a string of valid UTF-8 gets no event (no reader could decode it).
local function job_moved(events, job)
  if events.head == '' or type(job) ~= 'table' then
    return
  end
  local id = id_json(job.id)
  if not id then
    return
  end
  local name = name_json(job)
  if name then
    appended(events, events.head .. ',"jobId":' .. id .. ',"jobName":' .. name .. events.tail)
  else
    appended(events, events.head .. ',"jobId":' .. id .. events.tail)
  end
end

local function job_moved_in(events, slot)
  if events.head ~= '' then
    appended(events, events.head .. slot .. events.tail)
  end
end

-- The stream is trimmed once, after the call's events: it ends as capped as with XADD ... MAXLEN ~.
local function append_job_events(events)
  if not events.stream then
    return events.out
  end
  if events.count > 0 then
    redis.call('XTRIM', events.stream, 'MAXLEN', '~', events.maxlen)
  end
  return {}
end
