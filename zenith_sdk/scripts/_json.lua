-- Shared by the scripts that read JSON text without decoding it (included with
-- "--#include _json", before _retry and _event, which use it). Plain finds (memchr speed) are
-- used where a pattern with a character class would test every byte.
--
-- string_end(raw, open_quote): the position of the quote that closes the JSON string opened at
-- open_quote (or #raw when it is not closed). valid_utf8(text): whether text is well-formed
-- UTF-8. json_string(text): text as a JSON string, escaped as PROTOCOL 2.1 writes it.
-- verbatim_json_text(text): whether the raw text of a JSON string is already its canonical form.

local find, byte, gsub = string.find, string.byte, string.gsub

local QUOTE_BYTE, BACKSLASH_BYTE = 34, 92

local function string_end(raw, open_quote)
  local q = open_quote
  while true do
    q = find(raw, '"', q + 1, true)
    if not q then
      return #raw
    end
    local b = q - 1
    while b > open_quote and byte(raw, b) == BACKSLASH_BYTE do
      b = b - 1
    end
    if (q - 1 - b) % 2 == 0 then
      return q -- preceded by an even number of backslashes: not escaped
    end
  end
end

-- What each character that JSON must escape is written as: the short forms, else \u00XX.
local JSON_ESCAPES = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}
for byte = 0, 31 do
  local c = string.char(byte)
  JSON_ESCAPES[c] = JSON_ESCAPES[c] or string.format('\\u%04x', byte)
end
local MUST_ESCAPE = '[%z\1-\31"\\]'

local function json_string(text)
  if not find(text, MUST_ESCAPE) then
    return '"' .. text .. '"'
  end
  return '"' .. gsub(text, MUST_ESCAPE, JSON_ESCAPES) .. '"'
end

-- Whether the continuation bytes of the character starting at i are in [low, high] then 80..BF.
local function continues(text, i, count, low, high)
  local b = byte(text, i + 1)
  if not b or b < low or b > high then
    return false
  end
  for k = 2, count do
    b = byte(text, i + k)
    if not b or b < 0x80 or b > 0xBF then
      return false
    end
  end
  return true
end

-- Whether text is well-formed UTF-8 (no surrogates, nothing over U+10FFFF, shortest forms).
local function valid_utf8(text)
  if not find(text, '[\128-\255]') then
    return true
  end
  local i, n = 1, #text
  while i <= n do
    local c = byte(text, i)
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

-- Whether every backslash of text starts \\ or \" (the only escapes canonical JSON writes for
-- characters that are not control characters).
local function short_escapes_only(text)
  local i = 1
  while true do
    local b = find(text, '\\', i, true)
    if not b then
      return true
    end
    local next_byte = byte(text, b + 1)
    if next_byte ~= BACKSLASH_BYTE and next_byte ~= QUOTE_BYTE then
      return false
    end
    i = b + 2
  end
end

-- The raw text of a JSON string (with or without its quotes) is its canonical form when it
-- holds no control character, valid UTF-8 and no escape but \\ and \". One class scan settles
-- plain ASCII text.
local function verbatim_json_text(text)
  if find(text, '[%z\1-\31\128-\255]') then
    if find(text, '[%z\1-\31]') or not valid_utf8(text) then
      return false
    end
  end
  return short_escapes_only(text)
end
