#include "michi/guard/redis_ledger.hpp"

#include "ledger_common.hpp"
#include "michi/core/ids.hpp"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>

namespace michi::guard {

// One key's state lives under "michi:{<key id>}:" (the braces keep a key's names on one
// cluster slot):
//   spend   hash  period -> USD settled            ("d:2026-12-05", "m:2026-12")
//   held    hash  period -> USD held in flight, "n|" period -> holds in flight
//   res     hash  hold id -> "cost tokens second day month"
//   lease   zset  hold id, scored by the time its lease ends (ms)
//   lapsed  hash  hold id -> its res value, for a hold whose lease ended unsettled
//   lapsedx zset  lapsed hold id, scored by when it lapsed (forgotten a day later)
//   rpm/tpm hash  epoch second -> requests / tokens counted in that second
//   loop:<fingerprint>  zset  times (ms) the same body was sent
namespace {

constexpr const char* prelude = R"lua(
local function num(v) return tonumber(v) or 0 end
local function parse(v)
  local c, t, at, d, m = string.match(v, '^(%S+) (%S+) (%S+) (%S+) (%S+)$')
  return tonumber(c), tonumber(t), tonumber(at), d, m
end
local function release(held, period, cost)
  if redis.call('HINCRBY', held, 'n|' .. period, -1) <= 0 then
    redis.call('HDEL', held, period, 'n|' .. period)
  elseif tonumber(redis.call('HINCRBYFLOAT', held, period, -cost)) < 0 then
    redis.call('HSET', held, period, 0)
  end
end
-- Lets go of hold id (v: its res value) in both windows; returns its tokens and second.
local function drop_hold(held, res, lease, id, v)
  local c, t, at, d, m = parse(v)
  release(held, d, c)
  release(held, m, c)
  redis.call('HDEL', res, id)
  redis.call('ZREM', lease, id)
  return t, at
end
)lua";

// KEYS: spend held res lease lapsed lapsedx rpm tpm loop
// ARGV: now_ms day month daily monthly rpm tpm cost tokens hold_id lease_ms loop_max
//       loop_window_ms
// Returns {verdict, a, b, requests, oldest request second, tokens, oldest token second}:
// "ok"; "d"/"m" with spent and held; "rpm"/"tpm" with seconds until below the limit;
// "loop" with the times sent and when it frees (ms). Oldest seconds are -1 when empty.
constexpr const char* admit_lua = R"lua(
local spend, held, res, lease, lapsed, lapsedx, rpmk, tpmk, loopk =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local now_ms = tonumber(ARGV[1])
local now = math.floor(now_ms / 1000)
local day, month = ARGV[2], ARGV[3]

for _, id in ipairs(redis.call('ZRANGEBYSCORE', lease, '-inf', now_ms, 'LIMIT', 0, 100)) do
  local v = redis.call('HGET', res, id)
  if v then
    drop_hold(held, res, lease, id, v)
    redis.call('HSET', lapsed, id, v)
    redis.call('ZADD', lapsedx, now_ms, id)
  else
    redis.call('ZREM', lease, id)
  end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', lapsedx, '-inf', now_ms - 86400000,
                               'LIMIT', 0, 100)) do
  redis.call('HDEL', lapsed, id)
  redis.call('ZREM', lapsedx, id)
end

local function window(k)
  local all = redis.call('HGETALL', k)
  local total, oldest, buckets = 0, -1, {}
  for i = 1, #all, 2 do
    local s, n = tonumber(all[i]), tonumber(all[i + 1])
    if s <= now - 60 then
      redis.call('HDEL', k, all[i])
    elseif s <= now then
      total = total + n
      if n > 0 and (oldest < 0 or s < oldest) then oldest = s end
      buckets[#buckets + 1] = {s, n}
    end
  end
  return total, oldest, buckets
end
local function until_below(buckets, total, limit)
  if limit == 0 then return 60 end
  table.sort(buckets, function(a, b) return a[1] < b[1] end)
  local freed = 0
  for _, b in ipairs(buckets) do
    freed = freed + b[2]
    if total - freed < limit then return math.max(b[1] + 60 - now, 1) end
  end
  return 60
end

local rq, ro, rb = window(rpmk)
local tq, to, tb = window(tpmk)
local function answer(verdict, a, b)
  return {verdict, tostring(a), tostring(b), rq, ro, tq, to}
end

local daily, monthly = tonumber(ARGV[4]), tonumber(ARGV[5])
if daily then
  local s, h = num(redis.call('HGET', spend, day)), num(redis.call('HGET', held, day))
  if s + h >= daily then return answer('d', s, h) end
end
if monthly then
  local s, h = num(redis.call('HGET', spend, month)), num(redis.call('HGET', held, month))
  if s + h >= monthly then return answer('m', s, h) end
end
local rpm, tpm = tonumber(ARGV[6]), tonumber(ARGV[7])
if rpm and rq >= rpm then return answer('rpm', until_below(rb, rq, rpm), 0) end
if tpm and tq >= tpm then return answer('tpm', until_below(tb, tq, tpm), 0) end
local loop_max, loop_window = tonumber(ARGV[12]), tonumber(ARGV[13])
if loop_max then
  redis.call('ZREMRANGEBYSCORE', loopk, '-inf', now_ms - loop_window)
  local n = redis.call('ZCARD', loopk)
  if n >= loop_max then
    local frees = now_ms + loop_window
    if loop_max > 0 then
      local e = redis.call('ZRANGE', loopk, n - loop_max, n - loop_max, 'WITHSCORES')
      frees = tonumber(e[2]) + loop_window
    end
    return answer('loop', n + 1, frees)
  end
end

local cost, tokens, id = tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10]
redis.call('HINCRBY', rpmk, now, 1)
redis.call('EXPIRE', rpmk, 120)
redis.call('HINCRBY', tpmk, now, tokens)
redis.call('EXPIRE', tpmk, 120)
rq, tq = rq + 1, tq + tokens
if ro < 0 then ro = now end
if to < 0 and tokens > 0 then to = now end
for _, p in ipairs({day, month}) do
  redis.call('HINCRBYFLOAT', held, p, cost)
  redis.call('HINCRBY', held, 'n|' .. p, 1)
end
redis.call('HSET', res, id, ARGV[8] .. ' ' .. tokens .. ' ' .. now .. ' ' .. day .. ' ' .. month)
redis.call('ZADD', lease, now_ms + tonumber(ARGV[11]), id)
if loop_max then
  redis.call('ZADD', loopk, now_ms, id)
  redis.call('ZREMRANGEBYRANK', loopk, 0, -(loop_max + 1))
  redis.call('PEXPIRE', loopk, loop_window)
end
return answer('ok', 0, 0)
)lua";

// KEYS: spend held res lease lapsed lapsedx tpm
// ARGV: hold_id cost tokens now_ms day month
// Returns 1 when charged, 0 when the hold was settled before (a retried settlement).
constexpr const char* settle_lua = R"lua(
local spend, held, res, lease, lapsed, lapsedx, tpmk =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local id, cost, tokens = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = math.floor(tonumber(ARGV[4]) / 1000)
local v = redis.call('HGET', res, id)
if v then
  local t, at = drop_hold(held, res, lease, id, v)
  if at > now - 60 and at <= now and redis.call('HEXISTS', tpmk, at) == 1 then
    local n = num(redis.call('HGET', tpmk, at)) + tokens - t
    if n < 0 then n = 0 end
    redis.call('HSET', tpmk, at, n)
  end
elseif redis.call('HDEL', lapsed, id) == 1 then
  redis.call('ZREM', lapsedx, id)
else
  return 0
end
if cost > 0 then
  redis.call('HINCRBYFLOAT', spend, ARGV[5], ARGV[2])
  redis.call('HINCRBYFLOAT', spend, ARGV[6], ARGV[2])
end
return 1
)lua";

// KEYS: spend held rpm tpm   ARGV: now_ms day month
// Returns {spent today, spent this month, held today, requests, tokens} (last minute).
constexpr const char* usage_lua = R"lua(
local now = math.floor(tonumber(ARGV[1]) / 1000)
local function total(k)
  local all, sum = redis.call('HGETALL', k), 0
  for i = 1, #all, 2 do
    local s = tonumber(all[i])
    if s > now - 60 and s <= now then sum = sum + tonumber(all[i + 1]) end
  end
  return sum
end
return {tostring(num(redis.call('HGET', KEYS[1], ARGV[2]))),
        tostring(num(redis.call('HGET', KEYS[1], ARGV[3]))),
        tostring(num(redis.call('HGET', KEYS[2], ARGV[2]))), total(KEYS[3]), total(KEYS[4])}
)lua";

std::string sha1_hex(const std::string& s) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(s.data(), s.size(), md, &len, EVP_sha1(), nullptr);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out.push_back(hex[md[i] >> 4]);
        out.push_back(hex[md[i] & 15]);
    }
    return out;
}

std::int64_t epoch_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Enough digits that a USD amount reads back as the same double.
std::string usd_text(double usd) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", detail::sane_usd(usd));
    return buf;
}

template <typename T>
std::string opt_text(const std::optional<T>& v) {
    if (!v) {
        return "";
    }
    if constexpr (std::is_floating_point_v<T>) {
        return usd_text(*v);
    } else {
        return std::to_string(*v);
    }
}

// EVALSHA's key count, then the names of the key's state the script touches.
std::vector<std::string> script_keys(const std::string& key_id,
                                     std::initializer_list<std::string_view> names) {
    const std::string prefix = "michi:{" + key_id + "}:";
    std::vector<std::string> out{std::to_string(names.size())};
    for (const auto name : names) {
        out.push_back(prefix + std::string(name));
    }
    return out;
}

std::uint64_t count(const store::redis_value& v) {
    const double d = store::redis_number(v);
    return d > 0 ? static_cast<std::uint64_t>(d) : 0;
}

// One limit's x-ratelimit-* values from the count and the oldest counted second (-1: none)
// the admission script returns.
void fill_limit(std::uint64_t limit, const store::redis_value& used,
                const store::redis_value& oldest, std::int64_t now, bool& has,
                std::uint64_t& limit_out, std::uint64_t& remaining, std::chrono::seconds& reset) {
    const std::uint64_t n = count(used);
    const double o = store::redis_number(oldest);
    has = true;
    limit_out = limit;
    remaining = n < limit ? limit - n : 0;
    reset = std::chrono::seconds(o < 0 ? 0 : static_cast<std::int64_t>(o) + 60 - now);
}

void fill_headers(const store::redis_value& r, const config::limits& lim, std::int64_t now,
                  rate_headers& h) {
    h = rate_headers{};
    if (lim.rpm) {
        fill_limit(*lim.rpm, r.elements[3], r.elements[4], now, h.has_requests,
                   h.limit_requests, h.remaining_requests, h.reset_requests);
    }
    if (lim.tpm) {
        fill_limit(*lim.tpm, r.elements[5], r.elements[6], now, h.has_tokens, h.limit_tokens,
                   h.remaining_tokens, h.reset_tokens);
    }
}

} // namespace

struct redis_ledger::script {
    std::string body;
    std::string sha;
    explicit script(std::string lua) : body(std::move(lua)), sha(sha1_hex(body)) {}
};

redis_ledger::redis_ledger(executor ex, store::redis_url url, wall_clock now)
    : ex_(ex), client_(ex, std::move(url), redis_timeout), now_(std::move(now)) {}

redis_ledger::~redis_ledger() = default;

awaitable<std::tuple<error_code, store::redis_value>>
redis_ledger::run(const script& s, std::vector<std::string> args) {
    args.insert(args.begin(), {"EVALSHA", s.sha});
    auto [ec, v] = co_await client_.async_call(args, nothrow_op);
    if (!ec && v.is_error() && v.str.starts_with("NOSCRIPT")) {
        // First use on this Redis (or after a restart): send the script itself once.
        args[0] = "EVAL";
        args[1] = s.body;
        std::tie(ec, v) = co_await client_.async_call(std::move(args), nothrow_op);
    }
    co_return std::make_tuple(ec, std::move(v));
}

awaitable<redis_ledger::admission> redis_ledger::admit(const admission_request& req,
                                                       rate_headers& headers) {
    static const script s(std::string(prelude) + admit_lua);
    const auto now = now_();
    const std::int64_t now_ms = epoch_ms(now);
    const config::limits& lim = req.limits;
    const bool loop_guarded = lim.loop_max.has_value() && req.loop_fingerprint.has_value();
    const config::duration loop_window = lim.loop_window.value_or(std::chrono::seconds(60));
    const std::string day = day_period(now);
    const std::string month = month_period(now);
    std::string hold_id = new_request_id();
    const double cost = detail::sane_usd(req.est_cost_usd);
    const std::string loop =
        "loop:" + (loop_guarded ? std::to_string(*req.loop_fingerprint) : std::string("-"));
    auto args = script_keys(req.key_id, {"spend", "held", "res", "lease", "lapsed", "lapsedx",
                                         "rpm", "tpm", loop});
    args.insert(args.end(),
                {std::to_string(now_ms), day, month, opt_text(lim.daily_usd),
                 opt_text(lim.monthly_usd), opt_text(lim.rpm), opt_text(lim.tpm), usd_text(cost),
                 std::to_string(req.est_tokens), hold_id,
                 std::to_string(std::chrono::milliseconds(hold_lease).count()),
                 loop_guarded ? std::to_string(*lim.loop_max) : "",
                 std::to_string(loop_window.count())});
    auto [ec, r] = co_await run(s, std::move(args));
    if (ec || r.type != store::redis_value::kind::array || r.elements.size() != 7) {
        std::string why = ec ? client_.last_error() : (r.is_error() ? r.str : "a bad reply");
        co_return ledger_unavailable{"The shared ledger (Redis at " + client_.url().where() +
                                     ") cannot check this key's limits now: " + why +
                                     ". Retry shortly."};
    }
    const std::int64_t now_sec = now_ms / 1000 - (now_ms % 1000 < 0 ? 1 : 0);
    fill_headers(r, lim, now_sec, headers);
    const std::string& verdict = r.elements[0].str;
    const double a = store::redis_number(r.elements[1]);
    const double b = store::redis_number(r.elements[2]);
    if (verdict == "d" || verdict == "m") {
        const bool daily = verdict == "d";
        const auto resets = daily ? next_day(now) : next_month(now);
        refusal out{daily ? refusal_kind::budget_daily : refusal_kind::budget_monthly,
                    detail::budget_message(daily ? "Daily" : "Monthly",
                                           daily ? *lim.daily_usd : *lim.monthly_usd,
                                           req.key_id, a, b, resets),
                    detail::seconds_until(resets, now)};
        co_return out;
    }
    if (verdict == "rpm" || verdict == "tpm") {
        const bool rpm = verdict == "rpm";
        co_return refusal{rpm ? refusal_kind::rpm : refusal_kind::tpm,
                          detail::rate_message(req.key_id, rpm ? *lim.rpm : *lim.tpm,
                                               rpm ? "requests" : "tokens"),
                          std::chrono::seconds(static_cast<std::int64_t>(a))};
    }
    if (verdict == "loop") {
        const auto frees = std::chrono::system_clock::time_point(
            std::chrono::milliseconds(static_cast<std::int64_t>(b)));
        co_return refusal{refusal_kind::loop,
                          detail::loop_message(req.key_id, static_cast<std::uint64_t>(a),
                                               loop_window),
                          detail::seconds_until(frees, now)};
    }
    co_return reservation{std::move(hold_id), req.key_id, day, month, cost, req.est_tokens, now,
                          false};
}

void redis_ledger::settle(reservation& r, double actual_cost_usd, std::uint64_t actual_tokens) {
    if (r.settled) {
        return;
    }
    r.settled = true;
    const double cost = detail::sane_usd(actual_cost_usd);
    auto args = script_keys(r.key_id, {"spend", "held", "res", "lease", "lapsed", "lapsedx", "tpm"});
    args.insert(args.end(), {r.id, usd_text(cost), std::to_string(actual_tokens),
                             std::to_string(epoch_ms(now_())), r.day, r.month});
    std::string what = "charge of " + usd_text(cost) + " USD for key \"" + r.key_id + "\"";
    ++unsettled_;
    net::co_spawn(ex_, settle_task(std::move(args), std::move(what)), net::detached);
}

awaitable<void> redis_ledger::settle_task(std::vector<std::string> args, std::string what) {
    static const script s(std::string(prelude) + settle_lua);
    const auto give_up = steady_clock::now() + settle_retry_for;
    for (;;) {
        auto [ec, r] = co_await run(s, args);
        if (!ec && !r.is_error()) {
            break;
        }
        if (steady_clock::now() >= give_up) {
            spdlog::error("shared ledger: {} not recorded, Redis unreachable for {} s: {}", what,
                          settle_retry_for.count(),
                          ec ? client_.last_error() : r.str);
            break;
        }
        steady_timer pause(ex_, std::chrono::milliseconds(250));
        co_await pause.async_wait(nothrow_op);
    }
    --unsettled_;
}

awaitable<std::optional<key_usage>> redis_ledger::usage(std::string key_id) {
    static const script s(std::string(prelude) + usage_lua);
    const auto now = now_();
    auto args = script_keys(key_id, {"spend", "held", "rpm", "tpm"});
    args.insert(args.end(), {std::to_string(epoch_ms(now)), day_period(now), month_period(now)});
    auto [ec, r] = co_await run(s, std::move(args));
    if (ec || r.type != store::redis_value::kind::array || r.elements.size() != 5) {
        co_return std::nullopt;
    }
    key_usage u;
    u.spent_today = store::redis_number(r.elements[0]);
    u.spent_this_month = store::redis_number(r.elements[1]);
    u.reserved = store::redis_number(r.elements[2]);
    u.requests_last_minute = count(r.elements[3]);
    u.tokens_last_minute = count(r.elements[4]);
    co_return u;
}

} // namespace michi::guard
