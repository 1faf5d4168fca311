-- Shared by the scripts that match jobs against a filter (included with "--#include _filter").
-- Defines job_matches(raw, filter): the decoded job when raw matches filter, else false.
-- filter: {"name":s,"error":s,"text":s,"field":s,"value":s,"from":ms,"to":ms}, all optional:
-- "text" matches the raw payload, "name" the job name, "error" text in the error, "field"/"value"
-- a property (compared as text: a string as it is, a number or boolean as printed, null as
-- "null"; an object or array never matches), "from"/"to" failedAt (else createdAt) in [from, to).

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
      local value = nil
      if type(properties) == 'table' then
        value = properties[filter.field]
      end
      if property_text(value) ~= filter.value then
        return false
      end
    end
  end
  return job
end
