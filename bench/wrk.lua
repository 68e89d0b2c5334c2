-- wrk script of the ClipMix bench: each request with an API key, a POST of a JSON body (with an
-- Idempotency-Key by BENCH_MODE) or a GET of one path (the polling read).
--   BENCH_TARGETS  "host:port,host:port": thread i connects to target i mod n (replicas)
--   BENCH_METHOD   "POST" (the default) or "GET"
--   BENCH_MODE     POST: "unique" (a fresh key per request), "replay" (BENCH_REPLAY_KEYS keys
--                  per thread, cycled: every request after the first round replays) or "none"
--   BENCH_ETAG     GET: sent as If-None-Match when set (a poll that already holds the job as
--                  it stands: 304 expected)
--   BENCH_SECRET, BENCH_BODY, BENCH_PATH, BENCH_PREFIX (makes keys unique per run)
-- done() prints one line "BENCH_RESULT {json}" with counts and latency percentiles (us);
-- bench/loadgen.py reads it.

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
  thread:set("tid", made)
end

local method = os.getenv("BENCH_METHOD") or "POST"
local mode = os.getenv("BENCH_MODE") or "none"
local secret = os.getenv("BENCH_SECRET") or ""
local body = os.getenv("BENCH_BODY") or "{}"
local path = os.getenv("BENCH_PATH") or "/"
local prefix = os.getenv("BENCH_PREFIX") or "bench"
local etag = os.getenv("BENCH_ETAG") or ""
local replay_keys = tonumber(os.getenv("BENCH_REPLAY_KEYS") or "64")
local counter = 0
local get = nil

-- A GET is the same bytes every time: formatted once per thread, in init() (wrk sets the Host
-- header only after the script loads).
function init(args)
  if method == "GET" then
    local headers = {["Authorization"] = "Bearer " .. secret}
    if etag ~= "" then
      headers["If-None-Match"] = etag
    end
    get = wrk.format("GET", path, headers)
  end
end

request = function()
  if get ~= nil then
    return get
  end
  counter = counter + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. secret,
  }
  if mode == "unique" then
    headers["Idempotency-Key"] = prefix .. "-" .. tid .. "-" .. counter
  elseif mode == "replay" then
    headers["Idempotency-Key"] = prefix .. "-" .. tid .. "-" .. (counter % replay_keys)
  end
  return wrk.format("POST", path, headers, body)
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
