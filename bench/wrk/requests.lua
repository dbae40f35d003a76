-- wrk script: requests round-robin from a file (one per line: METHOD<TAB>PATH<TAB>HEADERS<TAB>BODY,
-- HEADERS as "Name: value" joined by "|"), and a JSON summary with p50/p90/p99/p99.9 at the end.
--   wrk -t2 -c64 -d10s -s bench/wrk/requests.lua http://127.0.0.1:8080 -- requests.tsv
local requests = {}
local counter = 0

local function split(text, separator)
  local parts = {}
  for part in string.gmatch(text .. separator, "(.-)" .. separator) do
    table.insert(parts, part)
  end
  return parts
end

function init(args)
  for line in io.lines(args[1]) do
    local fields = split(line, "\t")
    local headers = {}
    if fields[3] ~= nil and fields[3] ~= "" then
      for _, header in ipairs(split(fields[3], "|")) do
        local name, value = string.match(header, "^([^:]+):%s*(.*)$")
        headers[name] = value
      end
    end
    local body = fields[4]
    if body == "" then body = nil end
    table.insert(requests, wrk.format(fields[1], fields[2], headers, body))
  end
  -- Threads start at different offsets, so that they do not all hit the first user at once.
  counter = math.random(#requests)
end

function request()
  counter = counter % #requests + 1
  return requests[counter]
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"mode":"closed","completed":%d,"duration_us":%d,"errors":%d,"non_2xx":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"distribution":[',
    summary.requests, summary.duration,
    errors.connect + errors.read + errors.write + errors.timeout, errors.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
  local points = {0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100}
  for i, p in ipairs(points) do
    local value = p == 0 and latency.min or latency:percentile(p)
    io.write(string.format('%s[%s,%d]', i > 1 and "," or "", p, value))
  end
  io.write("]}\n")
end
