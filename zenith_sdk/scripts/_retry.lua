-- Shared by the scripts that retry jobs (included with "--#include _retry"): rewrite a job
-- payload for a retry, attempts reset to 0 and error/failedAt removed, every other byte unchanged.
-- Defines rebuilt_for_retry and reset_for_retry(raw, job) (see there for job). Needs _json
-- included before it.

local find, sub, byte = string.find, string.sub, string.byte

-- Top-level member spans of a JSON object, found by jumping from one structural character
-- to the next (strings and nesting skipped).
local function top_level_members(raw)
  local members, i, depth = {}, 1, 0
  local start, key = nil, nil
  while true do
    local p = find(raw, '[\"{}%[%],]', i)
    if not p then
      break
    end
    local c = sub(raw, p, p)
    if c == '"' then
      local q = string_end(raw, p)
      if depth == 1 and key == nil then
        start, key = p, sub(raw, p + 1, q - 1)
        if find(key, '\\', 1, true) then
          local ok, decoded = pcall(cjson.decode, '"' .. key .. '"')
          key = ok and decoded or key -- a key written with escapes compares as what it names
        end
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
      parts[#parts + 1] = sub(raw, m.from, m.to)
    end
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

local RESET_KEYS = {'attempts', 'error', 'failedAt'}
local QUOTED = {attempts = '"attempts"', error = '"error"', failedAt = '"failedAt"'}
local COMMA, COLON, QUOTE = byte(','), byte(':'), byte('"')
local JSON_SPACE = {[byte(' ')] = true, [byte('\t')] = true, [byte('\n')] = true, [byte('\r')] = true}

-- The span of the member key of a valid JSON object, leading comma and value included, when a
-- plain search finds it exactly: the key is written once in the whole payload, as ,"key": (no
-- escape, no space), and its value, right after the colon, is a string or a scalar. Else nil.
-- Written once suffices: ,"key": cannot occur inside a JSON string (its quotes would be escaped),
-- so it is a key, and at the top level when the decoded job has that member and no key of the
-- payload is written with a \u escape (the caller checks that).
local function member_span(raw, key)
  local quoted = QUOTED[key]
  local p = find(raw, quoted, 1, true)
  if not p or find(raw, quoted, p + #quoted, true) then
    return nil
  end
  local v = p + #quoted + 1
  if byte(raw, p - 1) ~= COMMA or byte(raw, v - 1) ~= COLON then
    return nil
  end
  local first = byte(raw, v)
  if first == QUOTE then
    return p - 1, string_end(raw, v)
  end
  if not first or JSON_SPACE[first] then
    return nil
  end
  return p - 1, (find(raw, '[,}]', v) or (#raw + 1)) - 1
end

-- Reused by every call (no table is built per job): the spans to cut, and the pieces kept.
local CUT_FROM, CUT_TO, CUT_WITH, KEPT = {}, {}, {}, {}

-- The payload with the members the decoded job has cut out (attempts put back as 0), or nil
-- when one of them cannot be found exactly by a plain search (see member_span), its value is
-- an object or array, or they are not written in the order attempts, error, failedAt.
local function cut_members(raw, job)
  local n, last = 0, 0
  for _, key in ipairs(RESET_KEYS) do
    local value = job[key]
    if value ~= nil then
      if type(value) == 'table' then
        return nil
      end
      local s, e = member_span(raw, key)
      if not s or s <= last then
        return nil
      end
      n, last = n + 1, e
      CUT_FROM[n], CUT_TO[n], CUT_WITH[n] = s, e, key == 'attempts' and ',"attempts":0' or ''
    end
  end
  local at = 1
  for i = 1, n do
    KEPT[2 * i - 1] = sub(raw, at, CUT_FROM[i] - 1)
    KEPT[2 * i] = CUT_WITH[i]
    at = CUT_TO[i] + 1
  end
  KEPT[2 * n + 1] = sub(raw, at)
  return table.concat(KEPT, '', 1, 2 * n + 1)
end

-- The payload for a retry. job is the decoded payload, or nil when Redis' JSON decoder cannot
-- read it. The plain search's cut is exact unless a key is written with a \u escape; then it is
-- checked by decoding it. Any doubt takes the full member scan.
local function reset_for_retry(raw, job)
  if type(job) ~= 'table' then
    return rebuilt_for_retry(raw)
  end
  local out = cut_members(raw, job)
  if not out then
    return rebuilt_for_retry(raw)
  end
  if not find(raw, '\\u', 1, true) then
    return out
  end
  local ok, new = pcall(cjson.decode, out)
  local attempts_ok = ok and ((job.attempts == nil and new.attempts == nil) or new.attempts == 0)
  if attempts_ok and new.error == nil and new.failedAt == nil and new.id == job.id and new.data == job.data then
    return out
  end
  return rebuilt_for_retry(raw)
end
