-- Shared by the scripts that retry jobs (included with "--#include _retry"): a job payload
-- rewritten for an operator's retry (PROTOCOL 4.13). Only top-level members change: the value of
-- "attempts" becomes 0; "error" and "failedAt" are cut out, each with the comma that separates it
-- from a member kept before it, or, when no member is kept before it, with everything up to the
-- next member. Every other byte is kept. zenith_sdk/control/_retry.py computes the same bytes.
--
-- reset_for_retry(raw, job): job is the decoded payload, or nil when Redis' JSON decoder cannot
-- read it. Needs _json included before it.
--
-- Cost matters here (a retry of all dead letters rewrites each one): every string a script makes
-- is hashed byte by byte as Lua creates it, so the rewrite makes as few as it can (the pieces
-- kept, then the result) and finds the members with plain finds (memchr speed) where it can.

local find, sub, byte = string.find, string.sub, string.byte

local QUOTE, COMMA, COLON, ZERO = 34, 44, 58, 48
local OPEN_OBJECT, CLOSE_OBJECT, OPEN_ARRAY = 123, 125, 91
local JSON_SPACE = {[32] = true, [9] = true, [10] = true, [13] = true}
local RESET = {attempts = '0', error = '', failedAt = ''}

-- The first position from i on (or back from i, by -1) that holds no JSON whitespace.
local function skip_space(raw, i, step)
  while JSON_SPACE[byte(raw, i)] do
    i = i + (step or 1)
  end
  return i
end

-- The position of the bracket that closes the object or array opened at open (or #raw), found
-- by jumping from one bracket or quote to the next, strings skipped with plain finds.
local function container_end(raw, open)
  local depth, i = 0, open
  while true do
    local p = find(raw, '["{}%[%]]', i)
    if not p then
      return #raw
    end
    local b = byte(raw, p)
    if b == QUOTE then
      i = string_end(raw, p) + 1
    else
      depth = depth + ((b == OPEN_OBJECT or b == OPEN_ARRAY) and 1 or -1)
      if depth == 0 then
        return p
      end
      i = p + 1
    end
  end
end

-- The position of the last byte of the JSON value that starts at v, a member's value: a scalar
-- ends before the next comma or closing brace (plain finds), and before any whitespace there.
local function value_end(raw, v)
  local first = byte(raw, v)
  if first == QUOTE then
    return string_end(raw, v)
  elseif first == OPEN_OBJECT or first == OPEN_ARRAY then
    return container_end(raw, v)
  end
  local comma, brace = find(raw, ',', v, true), find(raw, '}', v, true)
  local stop = (comma and brace and math.min(comma, brace)) or comma or brace or (#raw + 1)
  return skip_space(raw, stop - 1, -1)
end

-- Reused by every call (no table is built per job): the spans to cut, sorted, what replaces
-- them, and the pieces of a payload with more than three cuts.
local CUT_FROM, CUT_TO, CUT_WITH, PIECES = {}, {}, {}, {}

-- Adds the cut of from..to (replaced by with) to the n made so far, kept in order; returns their
-- new number.
local function add_cut(n, from, to, with)
  local at = n + 1
  while at > 1 and CUT_FROM[at - 1] > from do
    CUT_FROM[at], CUT_TO[at], CUT_WITH[at] = CUT_FROM[at - 1], CUT_TO[at - 1], CUT_WITH[at - 1]
    at = at - 1
  end
  CUT_FROM[at], CUT_TO[at], CUT_WITH[at] = from, to, with
  return n + 1
end

-- Adds the cut that sets the value at from..to to 0, unless it is 0 already.
local function add_zero(n, raw, from, to)
  if from == to and byte(raw, from) == ZERO then
    return n
  end
  return add_cut(n, from, to, '0')
end

-- raw with its n cuts made. A removal that directly follows another is merged with it (one piece
-- less); then one concatenation (a single new string) for up to three cuts.
local function spliced(raw, n)
  local m = math.min(n, 1)
  for i = 2, n do
    if CUT_WITH[i] == '' and CUT_WITH[m] == '' and CUT_FROM[i] == CUT_TO[m] + 1 then
      CUT_TO[m] = CUT_TO[i]
    else
      m = m + 1
      CUT_FROM[m], CUT_TO[m], CUT_WITH[m] = CUT_FROM[i], CUT_TO[i], CUT_WITH[i]
    end
  end
  n = m
  if n == 0 then
    return raw
  end
  local first = sub(raw, 1, CUT_FROM[1] - 1)
  if n == 1 then
    return first .. CUT_WITH[1] .. sub(raw, CUT_TO[1] + 1)
  end
  local second = sub(raw, CUT_TO[1] + 1, CUT_FROM[2] - 1)
  if n == 2 then
    return first .. CUT_WITH[1] .. second .. CUT_WITH[2] .. sub(raw, CUT_TO[2] + 1)
  end
  local third = sub(raw, CUT_TO[2] + 1, CUT_FROM[3] - 1)
  if n == 3 then
    return first .. CUT_WITH[1] .. second .. CUT_WITH[2] .. third .. CUT_WITH[3] .. sub(raw, CUT_TO[3] + 1)
  end
  local at = 1
  for i = 1, n do
    PIECES[2 * i - 1], PIECES[2 * i] = sub(raw, at, CUT_FROM[i] - 1), CUT_WITH[i]
    at = CUT_TO[i] + 1
  end
  PIECES[2 * n + 1] = sub(raw, at)
  return table.concat(PIECES, '', 1, 2 * n + 1)
end

-- The compact forms of the reset members that the plain search reads, anchored at the byte before
-- the member's name, capturing where the value starts and where the member ends + 1 (a number,
-- for attempts and failedAt; a string without escapes, for error; else value_end finds its end).
-- attempts may be the first member; error and failedAt, cut out with the comma before them, not.
local ATTEMPTS = '^[,{]"attempts":()%-?[%d.eE+]+()[,}]'
local ERROR = '^,"error":()"[^"\\]*"()[,}]'
local ERROR_ANY = '^,"error":()'
local FAILED_AT = '^,"failedAt":()%-?[%d.eE+]+()[,}]'

-- Where the member named quoted is written, as pattern reads it, when quoted is written nowhere
-- else: the position of the name, of the value and after the value; else nil. The name is looked
-- for by needle, its end from a letter seldom found in payloads (a plain find stops wherever its
-- first byte is written; a quote would stop it at every string), back bytes after its start. A
-- member that ends where the payload does (then the top-level object's last) is not looked for
-- further.
local function sole_compact(raw, quoted, needle, back, pattern)
  local at, value, after = nil, nil, nil
  local i = 1
  while true do
    local q = find(raw, needle, i, true)
    if not q then
      return at, value, after
    end
    i = q + #needle
    local _, _, v, a = find(raw, pattern, q - back - 1)
    if v and not at then
      at, value, after = q - back, v, a
      if a == #raw then
        return at, value, after
      end
    elseif v or sub(raw, q - back, i - 1) == quoted then
      return nil
    end
  end
end

-- The retried payload, found with a few plain finds when each reset member the decoded job has
-- is written compactly (,"name":value or {"name":value) and its quoted name nowhere else: that
-- name is then the top-level member's, as no member name is written with a \u escape (a reset
-- key cannot be written with any other escape). Else nil (the payload is then scanned).
local function retried_by_search(raw, job)
  if find(raw, '\\u', 1, true) then
    return nil
  end
  local n, at, value, after = 0, nil, nil, nil
  if job.attempts ~= nil then
    at, value, after = sole_compact(raw, '"attempts"', 'attempts"', 1, ATTEMPTS)
    if not at then
      return nil
    end
    n = add_zero(n, raw, value, after - 1)
  end
  if job.error ~= nil then
    at, value, after = sole_compact(raw, '"error"', 'or"', 4, ERROR)
    if not at then
      at, value = sole_compact(raw, '"error"', 'or"', 4, ERROR_ANY)
      if not at or byte(raw, value) ~= QUOTE then
        return nil
      end
      after = string_end(raw, value) + 1
      local follows = byte(raw, after)
      if follows ~= COMMA and follows ~= CLOSE_OBJECT then
        return nil
      end
    end
    n = add_cut(n, at - 1, after - 1, '')
  end
  if job.failedAt ~= nil then
    at, value, after = sole_compact(raw, '"failedAt"', 'failedAt"', 1, FAILED_AT)
    if not at then
      return nil
    end
    n = add_cut(n, at - 1, after - 1, '')
  end
  return spliced(raw, n)
end

-- Whether the member name written at from..to (quotes included) may be one of the reset keys,
-- and then the name as the decoded job has it (a name written with escapes is decoded).
local function reset_name(raw, from, to)
  local length = to - from - 1
  if length ~= 5 and length ~= 8 then
    -- Written with escapes, a reset key is longer than it reads; else it is not one.
    local escape = length > 8 and find(raw, '\\', from, true)
    if not escape or escape > to then
      return nil
    end
    local ok, decoded = pcall(cjson.decode, sub(raw, from, to))
    return ok and decoded or nil
  end
  return sub(raw, from + 1, to - 1)
end

-- The retried payload, found by walking the top-level members one by one (nested values and
-- strings skipped by jumps). Any payload that is a JSON object; raw itself for anything else.
local function retried_by_scan(raw)
  local i = skip_space(raw, 1)
  if byte(raw, i) ~= OPEN_OBJECT then
    return raw
  end
  local n, kept_before, comma = 0, false, nil
  i = skip_space(raw, i + 1)
  while byte(raw, i) == QUOTE do
    local name_end = string_end(raw, i)
    local colon = skip_space(raw, name_end + 1)
    if byte(raw, colon) ~= COLON then
      break
    end
    local value = skip_space(raw, colon + 1)
    local last = value_end(raw, value)
    local after = skip_space(raw, last + 1)
    local following = byte(raw, after) == COMMA and skip_space(raw, after + 1) or nil
    local reset = RESET[reset_name(raw, i, name_end) or '']
    if reset == '0' then
      n = add_zero(n, raw, value, last)
    elseif reset and kept_before then
      n = add_cut(n, comma, last, '')
    elseif reset then
      -- No member is kept before it: it goes with everything up to the next member's name.
      n = add_cut(n, i, following and following - 1 or last, '')
    end
    kept_before = kept_before or reset ~= ''
    if not following then
      break
    end
    comma, i = after, following
  end
  return spliced(raw, n)
end

-- The payload for a retry (see the top of this file). job is the decoded payload, or nil when
-- Redis' JSON decoder cannot read it.
local function reset_for_retry(raw, job)
  if type(job) == 'table' then
    local out = retried_by_search(raw, job)
    if out then
      return out
    end
  end
  return retried_by_scan(raw)
end
