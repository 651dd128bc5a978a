-- wrk script: the same non-streaming chat completion against every target.
-- Env: MICHI_BENCH_KEY (client secret; sent to every target so the requests are identical),
-- MICHI_BENCH_BODY_FILE (optional: the request body, read once).
wrk.method = "POST"
wrk.body = '{"model":"mock/gpt-bench","messages":[{"role":"user","content":"hello"}]}'
local body_file = os.getenv("MICHI_BENCH_BODY_FILE")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
end
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("MICHI_BENCH_KEY") or "none")

-- One machine-readable line for run.sh (latency in microseconds).
function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d "
    .. "non2xx=%d connect_err=%d read_err=%d write_err=%d timeouts=%d\n",
    summary.requests, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
