-- wrk script of the ClipMix bench: GETs one path with an API key (the polling read).
--   BENCH_TARGETS  "host:port,host:port": thread i connects to target i mod n (replicas)
--   BENCH_SECRET, BENCH_PATH; BENCH_ETAG: sent as If-None-Match when set (a poll that
--   already holds the job as it stands: 304 expected)
-- done() prints one line "BENCH_RESULT {json}" in post.lua's shape (bench/loadgen.py reads it).

local targets = {}
for t in string.gmatch(os.getenv("BENCH_TARGETS") or "", "[^,]+") do
  table.insert(targets, t)
end
local made = 0

function setup(thread)
  made = made + 1
  if #targets > 0 then
    local t = targets[(made - 1) % #targets + 1]
    local host, port = t:match("([^:]+):(%d+)")
    thread.addr = wrk.lookup(host, port)[1]
  end
end

local headers = {["Authorization"] = "Bearer " .. (os.getenv("BENCH_SECRET") or "")}
local etag = os.getenv("BENCH_ETAG") or ""
if etag ~= "" then
  headers["If-None-Match"] = etag
end
local req = nil

-- Formatted once per thread, in init(): wrk sets the Host header only after the script loads.
function init(args)
  req = wrk.format("GET", os.getenv("BENCH_PATH") or "/", headers)
end

request = function()
  return req
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, '
      .. '"read": %d, "write": %d, "status": %d, "timeout": %d, "p50_us": %d, '
      .. '"p90_us": %d, "p99_us": %d, "p999_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
