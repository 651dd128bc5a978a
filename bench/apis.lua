-- wrk script for bench/apis.sh: POST the body in MICHI_APIS_BODY with the client key
-- (MICHI_BENCH_KEY) and Anthropic's version header (sent on every API: the gateway reads it
-- only on /v1/messages).
wrk.method = "POST"
wrk.body = os.getenv("MICHI_APIS_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("MICHI_BENCH_KEY") or "none")
wrk.headers["anthropic-version"] = "2023-06-01"

-- One machine-readable line for apis.sh (latency in microseconds).
function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d rps=%.1f p50_us=%d p99_us=%d non2xx=%d errors=%d\n",
    summary.requests, summary.requests / secs, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
