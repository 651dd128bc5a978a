#include "michi/guard/redis_ledger.hpp"

#include "ledger_common.hpp"
#include "redis_scripts.hpp"
#include "michi/core/ids.hpp"
#include "michi/core/secret.hpp"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace michi::guard {
namespace {

// At most this many admissions, and as many settlements, go in one script call (the rest
// in the next, sent as soon as this one is answered).
constexpr std::size_t batch_cap = 256;
constexpr std::size_t values_per_admission = 7;

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
std::int64_t nano(double usd) {
    return std::llround(std::min(detail::sane_usd(usd), 1e9) * nano_per_usd);
}

std::string nano_text(double usd) { return std::to_string(nano(usd)); }

// Token counts as the scripts add them up (far above any request's).
constexpr std::uint64_t max_tokens = std::uint64_t{1} << 40;

double usd_of(const redis::redis_value& nano) { return redis::redis_number(nano) / nano_per_usd; }

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

bool same_limits(const config::limits& a, const config::limits& b) {
    return a.rpm == b.rpm && a.tpm == b.tpm && a.daily_usd == b.daily_usd &&
           a.monthly_usd == b.monthly_usd && a.loop_max == b.loop_max &&
           a.loop_window == b.loop_window;
}

std::uint64_t count(const redis::redis_value& v) {
    const double d = redis::redis_number(v);
    return d > 0 ? static_cast<std::uint64_t>(d) : 0;
}

// One limit's x-ratelimit-* values from the count and the oldest counted second (-1: none)
// the admission script returns.
void fill_limit(std::uint64_t limit, const redis::redis_value& used,
                const redis::redis_value& oldest, std::int64_t now, bool& has,
                std::uint64_t& limit_out, std::uint64_t& remaining, std::chrono::seconds& reset) {
    const std::uint64_t n = count(used);
    const double o = redis::redis_number(oldest);
    has = true;
    limit_out = limit;
    remaining = n < limit ? limit - n : 0;
    reset = std::chrono::seconds(o < 0 ? 0 : static_cast<std::int64_t>(o) + 60 - now);
}

// r: an admission's seven values in the batch's answer.
void fill_headers(const redis::redis_value* r, const config::limits& lim, std::int64_t now,
                  rate_headers& h) {
    h = rate_headers{};
    if (lim.rpm) {
        fill_limit(*lim.rpm, r[3], r[4], now, h.has_requests, h.limit_requests,
                   h.remaining_requests, h.reset_requests);
    }
    if (lim.tpm) {
        fill_limit(*lim.tpm, r[5], r[6], now, h.has_tokens, h.limit_tokens, h.remaining_tokens,
                   h.reset_tokens);
    }
}

} // namespace

struct redis_ledger::script {
    std::string body;
    std::string sha;
    explicit script(std::string lua) : body(std::move(lua)), sha(sha1_hex(body)) {}
};

// What a batch answers one admission: its seven values, or why there are none.
struct redis_ledger::admit_answer {
    bool done = false; // set by the batch (whatever the outcome)
    bool ok = false;
    std::string why;
    std::int64_t now_ms = 0; // the batch's time, the admission's
    std::string hold;        // the hold's lease member, as admitted
    std::vector<redis::redis_value> values;
};

struct redis_ledger::admit_entry {
    std::string hold_id;
    std::string cost; // nano-dollars
    std::string tokens;
    // daily monthly rpm tpm loop_max loop_window ("" when absent or not loop-guarded), made
    // once for the admissions of a key with the same limits
    std::shared_ptr<const limit_text> limits;
    std::string loop_key; // the set of this body's times; "" when none
    // The waiting admission's answer and its wake-up (both in its coroutine frame, which
    // waits for them).
    admit_answer* answer = nullptr;
    steady_timer* wake = nullptr;
};

struct redis_ledger::settle_entry {
    std::string hold; // the lease's member: "id cost tokens second day month", as admitted
    std::int64_t cost = 0, held_cost = 0; // nano-dollars
    std::int64_t tokens = 0, held_tokens = 0;
    std::string day, month, second;
    std::string key_id; // for the log
    double cost_usd = 0;
    steady_clock::time_point give_up;
};

// One key's admissions and settlements waiting for the next call, and whether a call for
// it is with Redis (one at a time per key and worker: the next batch forms meanwhile).
struct redis_ledger::key_batch {
    config::limits limits; // the limits of the key's last admission, as text in texts
    bool loop_guarded = false;
    std::shared_ptr<const limit_text> texts;
    std::vector<admit_entry> admits;
    std::vector<settle_entry> settles;
    bool in_flight = false;
    bool flush_queued = false;
};

const redis_ledger::script& redis_ledger::batch_script() {
    static const script s(std::string(scripts::prelude) + scripts::batch_lua);
    return s;
}

redis_ledger::redis_ledger(executor ex, redis::redis_url url, wall_clock now)
    : ex_(ex), client_(ex, std::move(url), redis_timeout), now_(std::move(now)),
      hold_prefix_(new_request_id().replace(0, 4, "h") + ".") {}

// The day's and month's names (snprintf'd: made again only when the day changes).
const redis_ledger::period_text& redis_ledger::periods_at(std::chrono::system_clock::time_point t) {
    const auto day = std::chrono::floor<std::chrono::days>(t).time_since_epoch().count();
    if (day != periods_.day_number || periods_.day.empty()) {
        periods_.day_number = day;
        periods_.day = day_period(t);
        periods_.month = month_period(t);
    }
    return periods_;
}

redis_ledger::~redis_ledger() = default;

awaitable<std::tuple<error_code, redis::redis_value>>
redis_ledger::run(const script& s, const redis::redis_command& tail) {
    redis::redis_command cmd;
    cmd.reserve(tail.body_size() + 64);
    cmd.arg("EVALSHA").arg(s.sha).append(tail);
    ++calls_;
    auto [ec, v] = co_await client_.call(std::move(cmd));
    if (!ec && v.is_error() && v.str.starts_with("NOSCRIPT")) {
        // First use on this Redis (or after a restart): send the script itself once.
        redis::redis_command full;
        full.arg("EVAL").arg(s.body).append(tail);
        std::tie(ec, v) = co_await client_.call(std::move(full));
    }
    co_return std::make_tuple(ec, std::move(v));
}

redis_ledger::key_batch& redis_ledger::batch_of(const std::string& key_id) {
    auto& b = batches_[key_id];
    if (!b) {
        b = std::make_unique<key_batch>();
    }
    return *b;
}

// Sends the key's batch at the end of this turn of the event loop (everything queued in
// the turn goes with it), unless a call for it is with Redis: then when that one is answered.
void redis_ledger::wake(const std::string& key_id, key_batch& b) {
    if (b.in_flight || b.flush_queued) {
        return;
    }
    b.flush_queued = true;
    net::post(ex_, [this, key_id] { flush(key_id); });
}

void redis_ledger::flush(const std::string& key_id) {
    const auto it = batches_.find(key_id);
    if (it == batches_.end()) {
        return;
    }
    key_batch& b = *it->second;
    b.flush_queued = false;
    if (b.in_flight) {
        return;
    }
    if (b.admits.empty() && b.settles.empty()) {
        batches_.erase(it);
        return;
    }
    std::vector<admit_entry> admits;
    std::vector<settle_entry> settles;
    if (b.admits.size() <= batch_cap) {
        admits.swap(b.admits);
    } else {
        const auto cut = b.admits.begin() + static_cast<std::ptrdiff_t>(batch_cap);
        admits.assign(std::make_move_iterator(b.admits.begin()), std::make_move_iterator(cut));
        b.admits.erase(b.admits.begin(), cut);
    }
    if (b.settles.size() <= batch_cap) {
        settles.swap(b.settles);
    } else {
        const auto cut = b.settles.begin() + static_cast<std::ptrdiff_t>(batch_cap);
        settles.assign(std::make_move_iterator(b.settles.begin()), std::make_move_iterator(cut));
        b.settles.erase(b.settles.begin(), cut);
    }
    b.in_flight = true;
    net::co_spawn(ex_, send(key_id, std::move(admits), std::move(settles)), net::detached);
}

void redis_ledger::start(std::function<void()> answered) {
    net::co_spawn(ex_, connect(std::move(answered)), net::detached);
}

awaitable<void> redis_ledger::connect(std::function<void()> answered) {
    const script& s = batch_script();
    for (;;) {
        redis::redis_command load;
        load.arg("SCRIPT").arg("LOAD").arg(s.body);
        auto [ec, v] = co_await client_.call(std::move(load));
        if (!ec && !v.is_error()) {
            break;
        }
        // (a failed connect makes every call fail at once for a second: no sooner than that)
        steady_timer pause(ex_, std::chrono::seconds(1));
        co_await pause.async_wait(nothrow_op);
    }
    answered();
}

awaitable<void> redis_ledger::send(std::string key_id, std::vector<admit_entry> admits,
                                   std::vector<settle_entry> settles) {
    const script& s = batch_script();
    const auto now = now_();
    const std::int64_t now_ms = epoch_ms(now);
    const std::string now_sec = std::to_string(now_ms / 1000);
    const period_text& periods = periods_at(now);
    const std::string& day = periods.day;
    const std::string& month = periods.month;
    const std::string state = redis::state_key(key_id);
    // KEYS: the state, its lease and lapsed holds, and each loop-guard set named.
    std::vector<std::string> loops;
    for (const auto& a : admits) {
        if (!a.loop_key.empty() &&
            std::find(loops.begin(), loops.end(), a.loop_key) == loops.end()) {
            loops.push_back(a.loop_key);
        }
    }
    // What the settlements change if every hold is still held, added up per field (a
    // batch's settlements touch a few fields: the day and month, the seconds admitted in).
    std::vector<std::pair<std::string, std::int64_t>> sums;
    const auto add = [&sums](std::string field, std::int64_t x) {
        for (auto& [name, sum] : sums) {
            if (name == field) {
                sum += x;
                return;
            }
        }
        sums.emplace_back(std::move(field), x);
    };
    for (const auto& e : settles) {
        add("s|" + e.day, e.cost);
        add("s|" + e.month, e.cost);
        add("h|" + e.day, -e.held_cost);
        add("h|" + e.month, -e.held_cost);
        add("t|" + e.second, e.tokens - e.held_tokens);
    }
    std::erase_if(sums, [](const auto& p) { return p.second == 0; });
    // The admissions' limit sets (one, unless the config changed while the batch formed).
    std::vector<const limit_text*> sets;
    for (const auto& a : admits) {
        if (std::find(sets.begin(), sets.end(), a.limits.get()) == sets.end()) {
            sets.push_back(a.limits.get());
        }
    }
    redis::redis_command tail;
    tail.arg(static_cast<long long>(3 + loops.size()));
    tail.arg(state).arg(state + ":lease").arg(state + ":lapsed");
    for (const auto& l : loops) {
        tail.arg(state + ":" + l);
    }
    tail.slot = redis::redis_key_slot(state);
    tail.arg(now_ms).arg(day).arg(month);
    tail.arg(now_ms + std::chrono::milliseconds(hold_lease).count());
    tail.arg(static_cast<long long>(settles.size())).arg(static_cast<long long>(admits.size()));
    tail.arg(static_cast<long long>(sums.size())).arg(static_cast<long long>(sets.size()));
    for (const auto& [name, sum] : sums) {
        tail.arg(name).arg(static_cast<long long>(sum));
    }
    for (const auto* l : sets) {
        for (const auto& v : *l) {
            tail.arg(v);
        }
    }
    for (const auto& e : settles) {
        tail.arg(e.hold);
    }
    for (const auto& e : settles) {
        tail.arg(static_cast<long long>(e.cost));
    }
    for (const auto& e : settles) {
        tail.arg(static_cast<long long>(e.tokens));
    }
    for (const auto& a : admits) {
        long long loop_index = 0;
        if (!a.loop_key.empty()) {
            loop_index = 4 + (std::find(loops.begin(), loops.end(), a.loop_key) - loops.begin());
        }
        const auto set_index =
            1 + (std::find(sets.begin(), sets.end(), a.limits.get()) - sets.begin());
        std::string& hold = a.answer->hold;
        hold = a.hold_id;
        hold.append(" ").append(a.cost).append(" ").append(a.tokens).append(" ").append(now_sec);
        hold.append(" ").append(day).append(" ").append(month);
        tail.arg(hold).arg(a.cost).arg(a.tokens).arg(static_cast<long long>(set_index));
        tail.arg(loop_index);
    }

    auto [ec, r] = co_await run(s, tail);
    const bool answered = !ec && r.type == redis::redis_value::kind::array &&
                          r.elements.size() == admits.size() * values_per_admission;
    std::string why;
    if (!answered) {
        why = ec ? client_.last_error() : (r.is_error() ? r.str : "a bad reply");
    }
    // Each admission its answer (resumed after this coroutine yields: the wake-up is posted).
    for (std::size_t i = 0; i < admits.size(); ++i) {
        admit_answer& ans = *admits[i].answer;
        ans.done = true;
        ans.ok = answered;
        ans.now_ms = now_ms;
        if (answered) {
            auto first = r.elements.begin() + static_cast<std::ptrdiff_t>(i * values_per_admission);
            ans.values.assign(std::make_move_iterator(first),
                              std::make_move_iterator(first + values_per_admission));
        } else {
            ans.why = why;
        }
        admits[i].wake->cancel();
    }
    // Settlements: acknowledged, or tried again shortly (a settlement is charged once however
    // often it is sent) until they have waited settle_retry_for.
    if (!ec && !r.is_error()) {
        unsettled_ -= settles.size();
    } else if (!settles.empty()) {
        std::vector<settle_entry> again;
        const auto t = steady_clock::now();
        for (auto& e : settles) {
            if (t >= e.give_up) {
                spdlog::error("shared ledger: charge of ${:.6f} for key \"{}\" not recorded, Redis "
                              "unreachable for {} s: {}",
                              e.cost_usd, e.key_id, settle_retry_for.count(), why);
                --unsettled_;
            } else {
                again.push_back(std::move(e));
            }
        }
        if (!again.empty()) {
            net::co_spawn(ex_, retry_later(key_id, std::move(again)), net::detached);
        }
    }
    key_batch& b = batch_of(key_id);
    b.in_flight = false;
    wake(key_id, b);
}

awaitable<void> redis_ledger::retry_later(std::string key_id, std::vector<settle_entry> settles) {
    steady_timer pause(ex_, std::chrono::milliseconds(250));
    co_await pause.async_wait(nothrow_op);
    key_batch& b = batch_of(key_id);
    for (auto& e : settles) {
        b.settles.push_back(std::move(e));
    }
    wake(key_id, b);
}

awaitable<redis_ledger::admission> redis_ledger::admit(const admission_request& req,
                                                       rate_headers& headers) {
    const config::limits& lim = req.limits;
    const bool loop_guarded = lim.loop_max.has_value() && req.loop_fingerprint.has_value();
    const config::duration loop_window = lim.loop_window.value_or(std::chrono::seconds(60));
    const double cost = detail::sane_usd(req.est_cost_usd);
    key_batch& batch = batch_of(req.key_id);
    if (!batch.texts || !same_limits(batch.limits, lim) || batch.loop_guarded != loop_guarded) {
        auto text = std::make_shared<limit_text>();
        (*text)[0] = opt_text(lim.daily_usd);
        (*text)[1] = opt_text(lim.monthly_usd);
        (*text)[2] = opt_text(lim.rpm);
        (*text)[3] = opt_text(lim.tpm);
        if (loop_guarded) {
            (*text)[4] = std::to_string(*lim.loop_max);
            (*text)[5] = std::to_string(loop_window.count());
        }
        batch.limits = lim;
        batch.loop_guarded = loop_guarded;
        batch.texts = std::move(text);
    }
    admit_entry e;
    // (unique across replicas and restarts: a random prefix per ledger, then a count)
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, ++holds_).ptr;
    e.hold_id.reserve(hold_prefix_.size() + static_cast<std::size_t>(end - digits));
    e.hold_id.append(hold_prefix_).append(digits, end);
    e.cost = nano_text(cost);
    e.tokens = std::to_string(req.est_tokens);
    e.limits = batch.texts;
    if (loop_guarded) {
        e.loop_key = "loop:" + std::to_string(*req.loop_fingerprint);
    }
    admit_answer ans;
    steady_timer woken(ex_, steady_clock::time_point::max());
    e.answer = &ans;
    e.wake = &woken;
    batch.admits.push_back(std::move(e));
    wake(req.key_id, batch);
    // (the batch's call ends within the client's timeout, and so this wait; a wait cut short
    // waits again: the batch writes the answer here)
    while (!ans.done) {
        co_await woken.async_wait(nothrow_op);
    }
    if (!ans.ok) {
        const bool single = client_.url().mode == redis::redis_mode::single;
        co_return ledger_unavailable{
            "The shared ledger (Redis " + std::string(single ? "at " : "") + client_.url().where() +
            ") cannot check this key's limits now: " + ans.why + ". Retry shortly."};
    }
    const auto now = std::chrono::system_clock::time_point(std::chrono::milliseconds(ans.now_ms));
    const redis::redis_value* r = ans.values.data();
    fill_headers(r, lim, ans.now_ms / 1000, headers);
    const std::string& verdict = r[0].str;
    const double a = redis::redis_number(r[1]);
    const double b = redis::redis_number(r[2]);
    if (verdict == "d" || verdict == "m") {
        const bool daily = verdict == "d";
        const auto resets = daily ? next_day(now) : next_month(now);
        refusal out{daily ? refusal_kind::budget_daily : refusal_kind::budget_monthly,
                    detail::budget_message(daily ? "Daily" : "Monthly",
                                           daily ? *lim.daily_usd : *lim.monthly_usd, req.key_id,
                                           a / nano_per_usd, b / nano_per_usd, resets),
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
        co_return refusal{
            refusal_kind::loop,
            detail::loop_message(req.key_id, static_cast<std::uint64_t>(a), loop_window),
            detail::seconds_until(frees, now)};
    }
    const period_text& periods = periods_at(now);
    co_return reservation{std::move(ans.hold), req.key_id, periods.day, periods.month, cost,
                          req.est_tokens,      now,        false};
}

void redis_ledger::settle(reservation& r, double actual_cost_usd, std::uint64_t actual_tokens) {
    if (r.settled) {
        return;
    }
    r.settled = true;
    const double cost = detail::sane_usd(actual_cost_usd);
    const auto at = std::chrono::floor<std::chrono::seconds>(r.at.time_since_epoch()).count();
    settle_entry e;
    e.cost = nano(cost);
    e.held_cost = nano(r.cost_usd);
    e.tokens = static_cast<std::int64_t>(std::min<std::uint64_t>(actual_tokens, max_tokens));
    e.held_tokens = static_cast<std::int64_t>(std::min<std::uint64_t>(r.tokens, max_tokens));
    e.day = r.day;
    e.month = r.month;
    e.second = std::to_string(at);
    e.hold = r.id;
    e.key_id = r.key_id;
    e.cost_usd = cost;
    e.give_up = steady_clock::now() + settle_retry_for;
    ++unsettled_;
    key_batch& b = batch_of(r.key_id);
    b.settles.push_back(std::move(e));
    wake(r.key_id, b);
}

awaitable<error_code> redis_ledger::revoke(std::string key_id) {
    const std::vector<std::string> args{"HSET", redis::state_key(key_id), redis::revoked_field,
                                        "1"};
    auto [ec, r] = co_await client_.call(redis::redis_command(args));
    if (!ec && r.is_error()) {
        ec = make_error_code(std::errc::io_error);
    }
    co_return ec;
}

awaitable<std::optional<key_usage>> redis_ledger::usage(std::string key_id) {
    static const script s(std::string(scripts::prelude) + scripts::usage_lua);
    const auto now = now_();
    const std::string state = redis::state_key(key_id);
    redis::redis_command tail;
    const period_text& periods = periods_at(now);
    tail.arg(1LL).arg(state).arg(epoch_ms(now)).arg(periods.day).arg(periods.month);
    tail.slot = redis::redis_key_slot(state);
    auto [ec, r] = co_await run(s, tail);
    if (ec || r.type != redis::redis_value::kind::array || r.elements.size() != 5) {
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
