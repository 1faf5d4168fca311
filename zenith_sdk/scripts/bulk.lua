-- bulk: one bounded chunk of a retry or delete over one state of one queue, atomic.
-- Jobs are matched by a filter (and, optionally, by membership of their id in a selection
-- set); matched jobs are removed from the source and, for a retry, pushed to the waiting
-- list with attempts reset to 0 and error/failedAt removed, every other byte unchanged.
-- A list is walked from its oldest end (negative indexes), which pushes at the head do not move.
--
-- KEYS[1] source: failed/waiting LIST or delayed ZSET   KEYS[2] target waiting LIST (retry)
-- KEYS[3] selection SET of job ids (read only when ARGV[6] is "1")
-- ARGV[1] mode: "retry", "promote" (push unchanged), "delete" or "count"
-- ARGV[2] source type: "list" or "zset"
-- ARGV[3] offset: entries of the source already walked (from the oldest end)
-- ARGV[4] chunk: entries to look at in this call   ARGV[5] filter JSON (see below)
-- ARGV[6] "1" to require the id in the selection set   ARGV[7] sample size (matches returned)
-- ARGV[8] tombstone: a value no job can equal, used to remove list entries in one LREM
-- ARGV[9] most jobs to move in this call (0: no limit); matches past it are counted, not moved
-- Filter JSON: {"name":s,"error":s,"text":s,"field":s,"value":s,"from":ms,"to":ms} (all optional;
-- "text" matches the raw payload, "field"/"value" a property, "from"/"to" failedAt or createdAt).
-- Returns: {looked_at, matched, moved, sample...}; the caller's next offset is
-- offset + looked_at - moved, and the walk is over when looked_at < chunk.
local source, target, selection = KEYS[1], KEYS[2], KEYS[3]
local mode, kind = ARGV[1], ARGV[2]
local offset, chunk = tonumber(ARGV[3]), tonumber(ARGV[4])
local filter = cjson.decode(ARGV[5])
local by_selection, sample_size, tombstone = ARGV[6] == '1', tonumber(ARGV[7]), ARGV[8]
local move_limit = tonumber(ARGV[9])

local function job_name(job)
  if type(job.data) == 'string' then
    local ok, data = pcall(cjson.decode, job.data)
    if ok and type(data) == 'table' then
      return data.job or data.class or job.className, data.properties
    end
  end
  return job.className, nil
end

local function matches(raw)
  -- returns the decoded job when it matches, else false
  if by_selection then
    -- Most payloads start with their id: test membership before paying for a full decode.
    local leading_id = string.match(raw, '^{"id":"([^"\\]*)"')
    if leading_id and redis.call('SISMEMBER', selection, leading_id) == 0 then
      return false
    end
  end
  local ok, job = pcall(cjson.decode, raw)
  if not ok or type(job) ~= 'table' then
    return false
  end
  if by_selection and (type(job.id) ~= 'string' or redis.call('SISMEMBER', selection, job.id) == 0) then
    return false
  end
  if filter.text and not string.find(raw, filter.text, 1, true) then
    return false
  end
  if filter.error and not (type(job.error) == 'string' and string.find(job.error, filter.error, 1, true)) then
    return false
  end
  local moment = tonumber(job.failedAt) or tonumber(job.createdAt)
  if (filter.from and not (moment and moment >= filter.from)) or (filter.to and not (moment and moment < filter.to)) then
    return false
  end
  if filter.name or filter.field then
    local name, properties = job_name(job)
    if filter.name and name ~= filter.name then
      return false
    end
    if filter.field then
      local value = type(properties) == 'table' and properties[filter.field]
      if value == nil or tostring(value) ~= filter.value then
        return false
      end
    end
  end
  return job
end

-- Top-level member spans of a JSON object, found by jumping from one structural character
-- to the next (strings and nesting skipped), so a retry can edit three members and leave
-- every other byte as it was.
local function string_end(raw, open_quote)
  local j = open_quote + 1
  while true do
    local q = string.find(raw, '["\\]', j)
    if not q then
      return #raw
    end
    if string.sub(raw, q, q) == '"' then
      return q
    end
    j = q + 2
  end
end

local function top_level_members(raw)
  local members, i, depth = {}, 1, 0
  local start, key = nil, nil
  while true do
    local p = string.find(raw, '[\"{}%[%],]', i)
    if not p then
      break
    end
    local c = string.sub(raw, p, p)
    if c == '"' then
      local q = string_end(raw, p)
      if depth == 1 and key == nil then
        start, key = p, string.sub(raw, p + 1, q - 1)
      end
      i = q + 1
    elseif c == '{' or c == '[' then
      depth = depth + 1
      i = p + 1
    elseif depth == 1 and (c == ',' or c == '}') then
      if key then
        members[#members + 1] = {key = key, from = start, to = p - 1}
      end
      start, key = nil, nil
      if c == '}' then
        break
      end
      i = p + 1
    elseif c == '}' or c == ']' then
      depth = depth - 1
      i = p + 1
    else
      i = p + 1 -- a comma inside a nested value
    end
  end
  return members
end

local function rebuilt_for_retry(raw)
  local parts = {}
  for _, m in ipairs(top_level_members(raw)) do
    if m.key == 'attempts' then
      parts[#parts + 1] = '"attempts":0'
    elseif m.key ~= 'error' and m.key ~= 'failedAt' then
      parts[#parts + 1] = string.sub(raw, m.from, m.to)
    end
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- The span of the first ,"key":value found by a plain search (it may be a nested one: the
-- caller checks the result), value included.
local function member_span(raw, key)
  local marker = ',"' .. key .. '":'
  local s = string.find(raw, marker, 1, true)
  if not s then
    return nil
  end
  local v = s + #marker
  if string.sub(raw, v, v) == '"' then
    return s, string_end(raw, v)
  end
  return s, (string.find(raw, '[,}]', v) or (#raw + 1)) - 1
end

-- Fast path: edit the three members in place, then check by decoding that exactly the
-- top-level ones changed; any doubt (a nested member of the same name) takes the full scan.
local function reset_for_retry(raw, job)
  local out = raw
  if job.attempts ~= nil then
    local s, e = member_span(out, 'attempts')
    if not s then return rebuilt_for_retry(raw) end
    out = string.sub(out, 1, s - 1) .. ',"attempts":0' .. string.sub(out, e + 1)
  end
  for _, key in ipairs({'error', 'failedAt'}) do
    if job[key] ~= nil then
      local s, e = member_span(out, key)
      if not s then return rebuilt_for_retry(raw) end
      out = string.sub(out, 1, s - 1) .. string.sub(out, e + 1)
    end
  end
  local ok, new = pcall(cjson.decode, out)
  local attempts_ok = (job.attempts == nil and new.attempts == nil) or new.attempts == 0
  if ok and attempts_ok and new.error == nil and new.failedAt == nil and new.id == job.id and new.data == job.data then
    return out
  end
  return rebuilt_for_retry(raw)
end

local entries
if kind == 'list' then
  entries = redis.call('LRANGE', source, -(offset + chunk), -(offset + 1))
else
  entries = redis.call('ZRANGE', source, offset, offset + chunk - 1)
end

local matched, moved, sample, list_len = 0, 0, {}, 0
if kind == 'list' then
  list_len = redis.call('LLEN', source)
end
for position = #entries, 1, -1 do
  -- oldest first: in a list the oldest of the window is last; in a zset, reversed below
  local index = kind == 'list' and position or (#entries - position + 1)
  local raw = entries[index]
  local job = matches(raw)
  if job then
    matched = matched + 1
    if #sample < sample_size then
      sample[#sample + 1] = raw
    end
    if mode ~= 'count' and (move_limit == 0 or moved < move_limit) then
      if kind == 'list' then
        redis.call('LSET', source, -(offset + #entries - index + 1), tombstone)
      else
        redis.call('ZREM', source, raw)
      end
      if mode == 'retry' then
        redis.call('LPUSH', target, reset_for_retry(raw, job))
      elseif mode == 'promote' then
        redis.call('LPUSH', target, raw)
      end
      moved = moved + 1
    end
  end
end
if kind == 'list' and moved > 0 then
  -- The tombstones sit in the window just walked, near the tail: remove them scanning from there.
  redis.call('LREM', source, -moved, tombstone)
end
local out = {#entries, matched, moved}
for _, raw in ipairs(sample) do
  out[#out + 1] = raw
end
return out
