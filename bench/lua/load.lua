-- wrk script of bench/run.py. Environment: BENCH_MODE (get_spv | post_investor | post_spv), BENCH_TOKEN (bearer),
-- BENCH_SLUG (get_spv), BENCH_RUN (prefix that keeps ids fresh across runs on one server), BENCH_DELAY_MS (optional:
-- mean pause per connection between requests, to pace the offered load instead of saturating the server).
-- done() prints one JSON line the bench parses; no response() callback, so wrk itself stays cheap.

local mode = os.getenv("BENCH_MODE") or "get_spv"
local auth = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")
local run = os.getenv("BENCH_RUN") or "r"
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local spv_body = '{"templateId":"syndicate_secondary","templateVersion":"1.0.0","attributes":{'
  .. '"underlyingCompanySlug":"co_acme","currency":"USD","shareClasses":[{"name":"Class A",'
  .. '"managementFeePercent":"2.0","carryPercent":"20.0"}]}}'

local threads = {}
local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_id", next_thread)
  table.insert(threads, thread)
end

local n = 0
local function fresh()
  n = n + 1
  return run .. "-" .. (thread_id or 0) .. "-" .. n
end

if mode == "get_spv" then
  wrk.method = "GET"
  wrk.path = "/v1/spv-requests/" .. (os.getenv("BENCH_SLUG") or "missing")
  wrk.headers["Authorization"] = auth
elseif mode == "post_investor" then
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = auth}
  request = function()
    local body = '{"investors":[{"partnerInvestorId":"bench-' .. fresh() .. '","email":"a@example.com",'
      .. '"firstName":"Ada","lastName":"Byron","dateOfBirth":"1980-01-01"}]}'
    return wrk.format("POST", "/v1/investors", headers, body)
  end
elseif mode == "post_spv" then
  request = function()
    local headers = {["Content-Type"] = "application/json", ["Authorization"] = auth,
                     ["Idempotency-Key"] = "bench-" .. fresh()}
    return wrk.format("POST", "/v1/spv-requests", headers, spv_body)
  end
else
  error("unknown BENCH_MODE " .. mode)
end

if delay_ms > 0 then
  delay = function()
    return math.floor(delay_ms * (0.5 + math.random()))  -- uniform in [0.5, 1.5) x the mean
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,'
    .. '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
    .. '"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
