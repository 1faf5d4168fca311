-- Shared by the scripts that match jobs against a filter (included with "--#include _filter").
-- Defines job_matches(raw, filter): the decoded job when raw matches filter, else false.
-- filter: {"name":s,"error":s,"text":s,"field":s,"value":s,"from":ms,"to":ms,"where":tree}, all
-- optional: "text" matches the raw payload, "name" the job name, "error" text in the error,
-- "field"/"value" a property (compared as text: a string as it is, a number or boolean as
-- printed, null as "null"; an object or array never matches), "from"/"to" failedAt (else
-- createdAt) in [from, to). "where" is a condition tree (a query, see zenith_protocol.query):
-- {"and", c...}, {"or", c...}, {"not", c}, {"text", s}, {"name", s}, {"error", s}, {"id", s}
-- (the job id compared as text), {"field", path, value} (a dotted path also reads nested
-- properties), {"from", ms}, {"to", ms}; the leaves read a job as the flat conditions above do.

local find = string.find

local function job_name(job)
  if type(job.data) == 'string' then
    local ok, data = pcall(cjson.decode, job.data)
    if ok and type(data) == 'table' then
      return data.job or data.class or job.className, data.properties
    end
  end
  return job.className, nil
end

local function property_text(value)
  if value == cjson.null then
    return 'null'
  end
  local kind = type(value)
  if kind == 'string' then
    return value
  end
  if kind == 'number' or kind == 'boolean' then
    return tostring(value)
  end
  return nil
end

-- properties[path], else (for "a.b") properties.a.b; nil when absent
local function property_at(properties, path)
  if type(properties) ~= 'table' then
    return nil
  end
  local value = properties[path]
  if value ~= nil or not find(path, '.', 1, true) then
    return value
  end
  value = properties
  for part in string.gmatch(path, '[^.]+') do
    if type(value) ~= 'table' then
      return nil
    end
    value = value[part]
  end
  return value
end

local function job_moment(job)
  return tonumber(job.failedAt) or tonumber(job.createdAt)
end

local function holds(condition, raw, job)
  local op, arg = condition[1], condition[2]
  if op == 'and' or op == 'or' then
    local any = op == 'or'
    for i = 2, #condition do
      if holds(condition[i], raw, job) == any then
        return any
      end
    end
    return not any
  elseif op == 'not' then
    return not holds(arg, raw, job)
  elseif op == 'text' then
    return find(raw, arg, 1, true) ~= nil
  elseif op == 'error' then
    return type(job.error) == 'string' and find(job.error, arg, 1, true) ~= nil
  elseif op == 'id' then
    return property_text(job.id) == arg
  elseif op == 'from' or op == 'to' then
    local moment = job_moment(job)
    return moment ~= nil and ((op == 'from' and moment >= arg) or (op == 'to' and moment < arg))
  end
  local name, properties = job_name(job)
  if op == 'name' then
    return name == arg
  elseif op == 'field' then
    return property_text(property_at(properties, arg)) == condition[3]
  end
  error('unknown filter condition: ' .. tostring(op))
end

local function job_matches(raw, filter)
  if filter.text and not find(raw, filter.text, 1, true) then
    return false
  end
  local ok, job = pcall(cjson.decode, raw)
  if not ok or type(job) ~= 'table' then
    return false
  end
  if filter.error and not (type(job.error) == 'string' and find(job.error, filter.error, 1, true)) then
    return false
  end
  if filter.from or filter.to then
    local moment = job_moment(job)
    if (filter.from and not (moment and moment >= filter.from)) or (filter.to and not (moment and moment < filter.to)) then
      return false
    end
  end
  if filter.name or filter.field then
    local name, properties = job_name(job)
    if filter.name and name ~= filter.name then
      return false
    end
    if filter.field then
      local value = nil
      if type(properties) == 'table' then
        value = properties[filter.field]
      end
      if property_text(value) ~= filter.value then
        return false
      end
    end
  end
  if filter.where and not holds(filter.where, raw, job) then
    return false
  end
  return job
end
