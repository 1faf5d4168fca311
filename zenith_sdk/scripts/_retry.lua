-- Shared by the scripts that retry jobs (included with "--#include _retry"): rewrite a job
-- payload for a retry, attempts reset to 0 and error/failedAt removed, every other byte unchanged.
-- Defines string_end, rebuilt_for_retry and reset_for_retry(raw, job) (see there for job).

-- The position of the quote that closes the string opened at open_quote.
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

-- Top-level member spans of a JSON object, found by jumping from one structural character
-- to the next (strings and nesting skipped).
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

local RESET_KEYS = {'attempts', 'error', 'failedAt'}
local MARKERS = {attempts = ',"attempts":', error = ',"error":', failedAt = ',"failedAt":'}

-- The span of the first ,"key":value found by a plain search (it may be a nested one: the
-- caller checks the result), value included.
local function member_span(raw, key)
  local marker = MARKERS[key]
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

local function has_nested_values(job)
  for _, value in pairs(job) do
    if type(value) == 'table' then
      return true
    end
  end
  return false
end

local function by_start(a, b)
  return a[1] < b[1]
end

-- The payload with the members the decoded job has cut out (attempts put back as 0), or nil
-- when one is not where a plain search looks or the spans overlap. Also returns whether no member
-- cut was found a second time further on.
local function cut_members(raw, job)
  local cuts, ordered, last, once = {}, true, 0, true
  for _, key in ipairs(RESET_KEYS) do
    if job[key] ~= nil then
      local s, e = member_span(raw, key)
      if not s then
        return nil
      end
      ordered = ordered and s > last
      last = s
      once = once and not string.find(raw, MARKERS[key], e + 1, true)
      cuts[#cuts + 1] = {s, e, key == 'attempts' and ',"attempts":0' or ''}
    end
  end
  if not ordered then
    table.sort(cuts, by_start)
  end
  local parts, at = {}, 1
  for _, cut in ipairs(cuts) do
    if cut[1] < at then
      return nil
    end
    parts[#parts + 1] = string.sub(raw, at, cut[1] - 1)
    parts[#parts + 1] = cut[3]
    at = cut[2] + 1
  end
  parts[#parts + 1] = string.sub(raw, at)
  return table.concat(parts), once
end

-- The payload for a retry. job is the decoded payload, or nil when Redis' JSON decoder cannot
-- read it. A plain search can only be wrong about a member that also appears nested, under an
-- escaped key name or twice; when the decoded job rules all three out the cut is exact, else it
-- is checked by decoding it. Any doubt takes the full member scan.
local function reset_for_retry(raw, job)
  if type(job) ~= 'table' then
    return rebuilt_for_retry(raw)
  end
  local out, once = cut_members(raw, job)
  if not out then
    return rebuilt_for_retry(raw)
  end
  if once and not string.find(raw, '\\u', 1, true) and not has_nested_values(job) then
    return out
  end
  local ok, new = pcall(cjson.decode, out)
  local attempts_ok = ok and ((job.attempts == nil and new.attempts == nil) or new.attempts == 0)
  if attempts_ok and new.error == nil and new.failedAt == nil and new.id == job.id and new.data == job.data then
    return out
  end
  return rebuilt_for_retry(raw)
end
