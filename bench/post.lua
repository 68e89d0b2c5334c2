-- wrk script of the ClipMix bench: POSTs a JSON body with an API key and an Idempotency-Key.
--   BENCH_TARGETS  "host:port,host:port": thread i connects to target i mod n (replicas)
--   BENCH_MODE     "unique" (a fresh key per request), "replay" (BENCH_REPLAY_KEYS keys per
--                  thread, cycled: every request after the first round replays) or "none"
--   BENCH_SECRET, BENCH_BODY, BENCH_PATH, BENCH_PREFIX (makes keys unique per run)
-- done() prints one line "BENCH_RESULT {json}" with counts and latency percentiles (us).

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

local mode = os.getenv("BENCH_MODE") or "none"
local secret = os.getenv("BENCH_SECRET") or ""
local body = os.getenv("BENCH_BODY") or "{}"
local path = os.getenv("BENCH_PATH") or "/"
local prefix = os.getenv("BENCH_PREFIX") or "bench"
local replay_keys = tonumber(os.getenv("BENCH_REPLAY_KEYS") or "64")
local counter = 0

request = function()
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
