-- wrk script for bench/guards.sh: chat completions with a body that changes on every
-- request (so the agent loop guard sees distinct requests, as a real agent sends).
-- Env: MICHI_BENCH_KEY.
local counter = 0
local key = os.getenv("MICHI_BENCH_KEY") or "none"

function request()
  counter = counter + 1
  local body = '{"model":"mock/gpt-bench","max_tokens":16,"messages":[{"role":"user","content":"hello '
    .. counter .. '"}]}'
  return wrk.format("POST", "/v1/chat/completions",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key }, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH rps=%.1f requests=%d p50_us=%d p99_us=%d non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), summary.requests, latency:percentile(50),
    latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
