#include "michi/guard/redis_ledger.hpp"

#include "ledger_common.hpp"
#include "michi/core/ids.hpp"
#include "michi/core/secret.hpp"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>

namespace michi::guard {

// One key's state is one hash, "michi:{<key id>}" (the braces keep the names of a key on one
// cluster slot), so that an admission or a settlement reads it with one HMGET and writes it
// with one HSET (each call a script makes costs Redis about a microsecond of its own). Its
// fields, amounts in integer nano-dollars (exact; no drift however many holds come and go):
//   s|<period>  settled spend               ("s|d:2026-12-05", "s|m:2026-12")
//   h|<period>  held by requests in flight
//   x|<hold id> a hold: "cost tokens second day month"
//   r|<second>, t|<second>  requests / tokens counted in that epoch second
//   rt, tt      their totals over the live seconds (the last 60); ro, to the oldest live
//               second with a count (-1: none); c the second up to which expired seconds
//               were dropped: an admission costs O(1), not a walk of 60 buckets
//   revoked     present once the key is revoked: admissions are refused from then on
// Beside it: ":lease" (zset of hold ids by the end of their lease, ms), ":lapsed" (the holds
// whose lease ended unsettled; the hash expires a day after the last lapse) and
// ":loop:<fingerprint>" (zset of the times, ms, the same body was sent).
namespace {

constexpr const char* prelude = R"lua(
local function num(v) return tonumber(v) or 0 end
-- Drops the seconds that left the window (at most a minute of them; a state idle longer is
-- counted again from what is left) and finds the oldest live seconds again if they left.
local function slide(st, c, edge, now, w)
  if c ~= nil and edge - c <= 60 then
    for s = c + 1, edge do
      local b = redis.call('HMGET', st, 'r|' .. s, 't|' .. s)
      if b[1] or b[2] then
        w.rt, w.tt = w.rt - num(b[1]), w.tt - num(b[2])
        redis.call('HDEL', st, 'r|' .. s, 't|' .. s)
      end
    end
    local need_r, need_t = w.ro >= 0 and w.ro <= edge, w.to >= 0 and w.to <= edge
    if need_r then w.ro = -1 end
    if need_t then w.to = -1 end
    for s = edge + 1, now do
      if not need_r and not need_t then break end
      local b = redis.call('HMGET', st, 'r|' .. s, 't|' .. s)
      if need_r and b[1] then w.ro, need_r = s, false end
      if need_t and num(b[2]) > 0 then w.to, need_t = s, false end
    end
  elseif c ~= nil then
    w.rt, w.tt, w.ro, w.to = 0, 0, -1, -1
    local all = redis.call('HGETALL', st)
    for i = 1, #all, 2 do
      local kind, sec = string.match(all[i], '^([rt])|(%d+)$')
      local s, n = tonumber(sec), tonumber(all[i + 1])
      if s and s <= edge then
        redis.call('HDEL', st, all[i])
      elseif kind == 'r' then
        w.rt = w.rt + n
        if w.ro < 0 or s < w.ro then w.ro = s end
      elseif kind == 't' then
        w.tt = w.tt + n
        if n > 0 and (w.to < 0 or s < w.to) then w.to = s end
      end
    end
  end
  if w.rt < 0 then w.rt = 0 end
  if w.tt < 0 then w.tt = 0 end
end
-- The key's windows at second now (slid and written back when the second moved on), and the
-- values of the extra fields asked for, from f[6] on.
local function state(st, now, ...)
  local f = redis.call('HMGET', st, 'rt', 'tt', 'c', 'ro', 'to', ...)
  local w = {rt = num(f[1]), tt = num(f[2]), ro = tonumber(f[4]) or -1, to = tonumber(f[5]) or -1,
             c = tonumber(f[3])}
  local edge = now - 60
  if w.c == nil or w.c < edge then
    slide(st, w.c, edge, now, w)
    w.c = edge
    redis.call('HSET', st, 'rt', w.rt, 'tt', w.tt, 'c', edge, 'ro', w.ro, 'to', w.to)
  end
  return w, f
end
)lua";

// KEYS: state lease lapsed loop
// ARGV: now_ms daily monthly rpm tpm cost tokens hold_id lease_end_ms loop_max loop_window_ms,
//       then the field names r|now t|now s|day s|month h|day h|month x|hold and the hold's
//       record (built by the gateway: Lua's string work is the dearest part of a script)
//       (amounts in nano-dollars; an absent limit is "")
// Returns {verdict, a, b, requests, oldest request second, tokens, oldest token second}:
// "ok"; "d"/"m" with spent and held; "rpm"/"tpm" with seconds until below the limit;
// "loop" with the times sent and when it frees (ms); "revoked" when the key was revoked (by
// any replica: revoked_field). Oldest seconds are -1 when empty.
constexpr const char* admit_lua = R"lua(
local st, lease, lapsed, loopk = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now_ms = tonumber(ARGV[1])
local now = math.floor(now_ms / 1000)
local r_now, t_now, s_day, s_month, h_day, h_month, x_hold =
  ARGV[12], ARGV[13], ARGV[14], ARGV[15], ARGV[16], ARGV[17], ARGV[18]

local expired = redis.call('ZRANGEBYSCORE', lease, '-inf', now_ms, 'LIMIT', 0, 100)
for _, id in ipairs(expired) do
  local v = redis.call('HGET', st, 'x|' .. id)
  if v then
    local c, _, _, d, m = string.match(v, '^(%S+) (%S+) (%S+) (%S+) (%S+)$')
    redis.call('HINCRBY', st, 'h|' .. d, -tonumber(c))
    redis.call('HINCRBY', st, 'h|' .. m, -tonumber(c))
    redis.call('HDEL', st, 'x|' .. id)
    redis.call('HSET', lapsed, id, v)
  end
  redis.call('ZREM', lease, id)
end
if #expired > 0 then redis.call('EXPIRE', lapsed, 86400) end

local w, f = state(st, now, r_now, t_now, s_day, s_month, h_day, h_month, 'revoked')
local function answer(verdict, a, b)
  return {verdict, a, b, w.rt, w.ro, w.tt, w.to}
end
if f[12] then return answer('revoked', '0', '0') end
-- Seconds until the window of kind ('r' or 't') drops below limit (a refusal's retry-after).
local function until_below(kind, total, limit)
  if limit == 0 then return 60 end
  local all, buckets = redis.call('HGETALL', st), {}
  for i = 1, #all, 2 do
    local k, sec = string.match(all[i], '^([rt])|(%d+)$')
    local s = tonumber(sec)
    if k == kind and s > now - 60 and s <= now then
      buckets[#buckets + 1] = {s, tonumber(all[i + 1])}
    end
  end
  table.sort(buckets, function(a, b) return a[1] < b[1] end)
  local freed = 0
  for _, b in ipairs(buckets) do
    freed = freed + b[2]
    if total - freed < limit then return math.max(b[1] + 60 - now, 1) end
  end
  return 60
end

local daily, monthly = tonumber(ARGV[2]), tonumber(ARGV[3])
local sd, sm, hd, hm = num(f[8]), num(f[9]), num(f[10]), num(f[11])
if daily and sd + hd >= daily then return answer('d', tostring(sd), tostring(hd)) end
if monthly and sm + hm >= monthly then return answer('m', tostring(sm), tostring(hm)) end
local rpm, tpm = tonumber(ARGV[4]), tonumber(ARGV[5])
if rpm and w.rt >= rpm then return answer('rpm', tostring(until_below('r', w.rt, rpm)), '0') end
if tpm and w.tt >= tpm then return answer('tpm', tostring(until_below('t', w.tt, tpm)), '0') end
local loop_max, loop_window = tonumber(ARGV[10]), tonumber(ARGV[11])
if loop_max then
  redis.call('ZREMRANGEBYSCORE', loopk, '-inf', now_ms - loop_window)
  local n = redis.call('ZCARD', loopk)
  if n >= loop_max then
    local frees = now_ms + loop_window
    if loop_max > 0 then
      local e = redis.call('ZRANGE', loopk, n - loop_max, n - loop_max, 'WITHSCORES')
      frees = tonumber(e[2]) + loop_window
    end
    return answer('loop', tostring(n + 1), tostring(frees))
  end
end

local cost, tokens, id = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
w.rt, w.tt = w.rt + 1, w.tt + tokens
local rec = {'rt', w.rt, 'tt', w.tt, x_hold, ARGV[19]}
if now > w.c then
  rec[#rec + 1], rec[#rec + 2] = r_now, num(f[6]) + 1
  rec[#rec + 1], rec[#rec + 2] = t_now, num(f[7]) + tokens
else -- (a clock more than a minute behind another replica's: count it as the oldest second)
  redis.call('HINCRBY', st, 'r|' .. (w.c + 1), 1)
  redis.call('HINCRBY', st, 't|' .. (w.c + 1), tokens)
end
if w.ro < 0 then
  w.ro = now
  rec[#rec + 1], rec[#rec + 2] = 'ro', now
end
if w.to < 0 and tokens > 0 then
  w.to = now
  rec[#rec + 1], rec[#rec + 2] = 'to', now
end
if cost > 0 then
  rec[#rec + 1], rec[#rec + 2] = h_day, hd + cost
  rec[#rec + 1], rec[#rec + 2] = h_month, hm + cost
end
redis.call('HSET', st, unpack(rec))
redis.call('ZADD', lease, ARGV[9], id)
if loop_max then
  redis.call('ZADD', loopk, now_ms, id)
  redis.call('ZREMRANGEBYRANK', loopk, 0, -(loop_max + 1))
  redis.call('PEXPIRE', loopk, loop_window)
end
return answer('ok', '0', '0')
)lua";

// KEYS: state lease lapsed
// ARGV: hold_id cost tokens held_cost held_tokens (the hold as admitted, which the gateway
//       still knows; amounts in nano-dollars), then the field names x|hold s|day s|month
//       h|day h|month t|second-of-admission
// Returns 1 when charged, 0 when the hold was settled before (a retried settlement).
constexpr const char* settle_lua = R"lua(
local st, lease, lapsed = KEYS[1], KEYS[2], KEYS[3]
local id, cost, tokens = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local est, est_tokens = tonumber(ARGV[4]), tonumber(ARGV[5])
local x_hold, s_day, s_month, h_day, h_month, t_at =
  ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local f = redis.call('HMGET', st, x_hold, s_day, s_month, h_day, h_month, t_at, 'tt')
local rec = {s_day, num(f[2]) + cost, s_month, num(f[3]) + cost}
if f[1] then
  rec[#rec + 1], rec[#rec + 2] = h_day, math.max(num(f[4]) - est, 0)
  rec[#rec + 1], rec[#rec + 2] = h_month, math.max(num(f[5]) - est, 0)
  -- The estimate counted at admission becomes the actual tokens, if its second is live.
  if f[6] and tokens ~= est_tokens then
    local after = math.max(tonumber(f[6]) + tokens - est_tokens, 0)
    rec[#rec + 1], rec[#rec + 2] = t_at, after
    rec[#rec + 1], rec[#rec + 2] = 'tt', math.max(num(f[7]) + after - tonumber(f[6]), 0)
  end
  redis.call('HDEL', st, x_hold)
  redis.call('ZREM', lease, id)
elseif redis.call('HDEL', lapsed, id) == 0 then
  return 0
end
redis.call('HSET', st, unpack(rec))
return 1
)lua";

// KEYS: state   ARGV: now_ms day month
// Returns {spent today, spent this month, held today, requests, tokens} (last minute), the
// amounts in nano-dollars.
constexpr const char* usage_lua = R"lua(
local w, f = state(KEYS[1], math.floor(tonumber(ARGV[1]) / 1000), 's|' .. ARGV[2],
                   's|' .. ARGV[3], 'h|' .. ARGV[2])
return {num(f[6]), num(f[7]), num(f[8]), w.rt, w.tt}
)lua";

std::string sha1_hex(const std::string& s) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(s.data(), s.size(), md, &len, EVP_sha1(), nullptr);
    return raw_to_hex(std::string_view(reinterpret_cast<const char*>(md), len));
}

std::int64_t epoch_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

constexpr double nano_per_usd = 1e9;

// A USD amount as the scripts count it: whole nano-dollars (up to a billion dollars).
std::string nano_text(double usd) {
    return std::to_string(std::llround(std::min(detail::sane_usd(usd), 1e9) * nano_per_usd));
}

double usd_of(const store::redis_value& nano) {
    return store::redis_number(nano) / nano_per_usd;
}

template <typename T>
std::string opt_text(const std::optional<T>& v) {
    if (!v) {
        return "";
    }
    if constexpr (std::is_floating_point_v<T>) {
        return nano_text(*v);
    } else {
        return std::to_string(*v);
    }
}

// EVALSHA's key count, then the key's state and the names beside it the script touches.
std::vector<std::string> script_keys(const std::string& key_id,
                                     std::initializer_list<std::string_view> beside) {
    const std::string state = redis_state_key(key_id);
    std::vector<std::string> out{std::to_string(beside.size() + 1), state};
    for (const auto name : beside) {
        out.push_back(state + ":" + std::string(name));
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

awaitable<admission> redis_ledger::admit(const admission_request& req,
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
    const std::string now_sec = std::to_string(now_ms / 1000);
    const std::string tokens = std::to_string(req.est_tokens);
    auto args = script_keys(req.key_id, {"lease", "lapsed", loop});
    args.insert(args.end(),
                {std::to_string(now_ms), opt_text(lim.daily_usd), opt_text(lim.monthly_usd),
                 opt_text(lim.rpm), opt_text(lim.tpm), nano_text(cost), tokens, hold_id,
                 std::to_string(now_ms + std::chrono::milliseconds(hold_lease).count()),
                 loop_guarded ? std::to_string(*lim.loop_max) : "",
                 std::to_string(loop_window.count()), "r|" + now_sec, "t|" + now_sec,
                 "s|" + day, "s|" + month, "h|" + day, "h|" + month, "x|" + hold_id,
                 nano_text(cost) + ' ' + tokens + ' ' + now_sec + ' ' + day + ' ' + month});
    auto [ec, r] = co_await run(s, std::move(args));
    if (ec || r.type != store::redis_value::kind::array || r.elements.size() != 7) {
        std::string why = ec ? client_.last_error() : (r.is_error() ? r.str : "a bad reply");
        co_return ledger_unavailable{"The shared ledger (Redis at " + client_.url().where() +
                                     ") cannot check this key's limits now: " + why +
                                     ". Retry shortly."};
    }
    fill_headers(r, lim, now_ms / 1000, headers);
    const std::string& verdict = r.elements[0].str;
    const double a = store::redis_number(r.elements[1]);
    const double b = store::redis_number(r.elements[2]);
    if (verdict == "d" || verdict == "m") {
        const bool daily = verdict == "d";
        const auto resets = daily ? next_day(now) : next_month(now);
        refusal out{daily ? refusal_kind::budget_daily : refusal_kind::budget_monthly,
                    detail::budget_message(daily ? "Daily" : "Monthly",
                                           daily ? *lim.daily_usd : *lim.monthly_usd,
                                           req.key_id, a / nano_per_usd, b / nano_per_usd,
                                           resets),
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
    if (verdict == "revoked") {
        co_return refusal{refusal_kind::revoked, "Key \"" + req.key_id + "\" was revoked.",
                          std::chrono::seconds(0)};
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
    const auto at = std::chrono::floor<std::chrono::seconds>(r.at.time_since_epoch()).count();
    auto args = script_keys(r.key_id, {"lease", "lapsed"});
    args.insert(args.end(), {r.id, nano_text(cost), std::to_string(actual_tokens),
                             nano_text(r.cost_usd), std::to_string(r.tokens), "x|" + r.id,
                             "s|" + r.day, "s|" + r.month, "h|" + r.day, "h|" + r.month,
                             "t|" + std::to_string(at)});
    std::string what = "charge of $" + std::to_string(cost) + " for key \"" + r.key_id + "\"";
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

awaitable<error_code> redis_ledger::revoke(std::string key_id) {
    std::vector<std::string> args{"HSET", redis_state_key(key_id), revoked_field, "1"};
    auto [ec, r] = co_await client_.async_call(std::move(args), nothrow_op);
    if (!ec && r.is_error()) {
        ec = make_error_code(std::errc::io_error);
    }
    co_return ec;
}

awaitable<std::optional<key_usage>> redis_ledger::usage(std::string key_id) {
    static const script s(std::string(prelude) + usage_lua);
    const auto now = now_();
    auto args = script_keys(key_id, {});
    args.insert(args.end(), {std::to_string(epoch_ms(now)), day_period(now), month_period(now)});
    auto [ec, r] = co_await run(s, std::move(args));
    if (ec || r.type != store::redis_value::kind::array || r.elements.size() != 5) {
        co_return std::nullopt;
    }
    key_usage u;
    u.spent_today = usd_of(r.elements[0]);
    u.spent_this_month = usd_of(r.elements[1]);
    u.reserved = usd_of(r.elements[2]);
    u.requests_last_minute = count(r.elements[3]);
    u.tokens_last_minute = count(r.elements[4]);
    co_return u;
}

} // namespace michi::guard
