#include "michi/guard/local_ledger.hpp"

#include "ledger_common.hpp"

#include "michi/core/adaptive_mutex.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <vector>
#include <limits>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

namespace michi::guard {
namespace {

using sys_clock = std::chrono::system_clock;
using time_point = sys_clock::time_point;

constexpr std::size_t shard_count = 16;
constexpr std::int64_t window_seconds = 60;
constexpr std::size_t max_fingerprints_per_key = 4096;
constexpr config::duration default_loop_window = std::chrono::seconds(60);
constexpr std::int64_t no_period = std::numeric_limits<std::int64_t>::min();

std::int64_t epoch_seconds(time_point t) {
    return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::int64_t day_number(time_point t) {
    return std::chrono::floor<std::chrono::days>(t).time_since_epoch().count();
}

std::int64_t month_number(time_point t) {
    const std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(t)};
    return static_cast<std::int64_t>(static_cast<int>(ymd.year())) * 12 +
           static_cast<unsigned>(ymd.month()) - 1;
}

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
    const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    return a > max - b ? max : a + b;
}

std::uint64_t saturating_sub(std::uint64_t a, std::uint64_t b) { return a > b ? a - b : 0; }

} // namespace

namespace {

// Per-second counters over the last 60 s: O(60) memory whatever the rate. A bucket counts
// while its second is in (now - 60, now]; buckets from a clock that went back are ignored.
// The total and the oldest counted second are kept for the current second, so the reads
// on every request are O(1) and the buckets are walked once per second.
class rolling_window {
public:
    std::uint64_t total(std::int64_t now) const {
        refresh(now);
        return cached_total_;
    }

    void add(std::int64_t now, std::uint64_t amount) {
        bucket& b = buckets_[slot(now)];
        if (b.second != now) {
            b = bucket{now, 0};
        }
        b.amount = saturating_add(b.amount, amount);
        if (cached_at_ == now) {
            // (saturating sums of non-negative amounts: the same as summing again)
            cached_total_ = saturating_add(cached_total_, amount);
            if (cached_oldest_ == no_period && b.amount > 0) {
                cached_oldest_ = now;
            }
        }
    }

    // Adds delta to the bucket of second `at` if it is still in the window (floor 0).
    void adjust(std::int64_t at, std::int64_t now, std::int64_t delta) {
        bucket& b = buckets_[slot(at)];
        if (b.second != at || !live(b, now)) {
            return;
        }
        const std::uint64_t before = b.amount;
        if (delta >= 0) {
            b.amount = saturating_add(b.amount, static_cast<std::uint64_t>(delta));
        } else {
            b.amount = saturating_sub(b.amount, static_cast<std::uint64_t>(-(delta + 1)) + 1);
        }
        // The cached total follows the change (every settlement adjusts one bucket: summing
        // the window again each time would cost the next admission a walk of 60 buckets).
        // A saturated total, or an oldest bucket that emptied, is summed again instead.
        const bool recount = cached_at_ != now ||
                             cached_total_ == std::numeric_limits<std::uint64_t>::max() ||
                             (b.amount == 0 && at == cached_oldest_);
        if (recount) {
            cached_at_ = no_period;
            return;
        }
        if (b.amount >= before) {
            cached_total_ = saturating_add(cached_total_, b.amount - before);
        } else {
            cached_total_ -= std::min(cached_total_, before - b.amount);
        }
        if (b.amount > 0 && (cached_oldest_ == no_period || at < cached_oldest_)) {
            cached_oldest_ = at;
        }
    }

    // Seconds until the oldest counted bucket leaves the window; 0 when empty.
    std::int64_t until_oldest_expires(std::int64_t now) const {
        refresh(now);
        return cached_oldest_ == no_period ? 0 : cached_oldest_ + window_seconds - now;
    }

    // Seconds until the total drops below limit, at least 1 (a limit of 0 never frees:
    // a full window).
    std::int64_t until_below(std::int64_t now, std::uint64_t limit) const {
        const std::uint64_t sum = total(now);
        if (limit == 0) {
            return window_seconds;
        }
        std::uint64_t freed = 0;
        for (std::int64_t s = now - window_seconds + 1; s <= now; ++s) {
            const bucket& b = buckets_[slot(s)];
            if (b.second != s) {
                continue;
            }
            freed = saturating_add(freed, b.amount);
            if (saturating_sub(sum, freed) < limit) {
                return std::max<std::int64_t>(s + window_seconds - now, 1);
            }
        }
        return window_seconds;
    }

private:
    struct bucket {
        std::int64_t second = no_period;
        std::uint64_t amount = 0;
    };

    static std::size_t slot(std::int64_t second) {
        return static_cast<std::size_t>(((second % window_seconds) + window_seconds) %
                                        window_seconds);
    }

    static bool live(const bucket& b, std::int64_t now) {
        return b.second > now - window_seconds && b.second <= now;
    }

    // Sums the buckets again when the second has changed (or a settlement adjusted one).
    void refresh(std::int64_t now) const {
        if (cached_at_ == now) {
            return;
        }
        std::uint64_t sum = 0;
        std::int64_t oldest = no_period;
        for (std::int64_t s = now - window_seconds + 1; s <= now; ++s) {
            const bucket& b = buckets_[slot(s)];
            if (b.second != s) {
                continue;
            }
            sum = saturating_add(sum, b.amount);
            if (oldest == no_period && b.amount > 0) {
                oldest = s;
            }
        }
        cached_at_ = now;
        cached_total_ = sum;
        cached_oldest_ = oldest;
    }

    std::array<bucket, window_seconds> buckets_{};
    mutable std::int64_t cached_at_ = no_period;
    mutable std::uint64_t cached_total_ = 0;
    mutable std::int64_t cached_oldest_ = no_period; // oldest second with an amount
};

// Settled spend and in-flight reservations of one key in one calendar window.
struct period_account {
    std::int64_t id = no_period; // day or month number
    std::string name;            // "d:YYYY-MM-DD" / "m:YYYY-MM"
    double spent = 0;
    double reserved = 0;
    std::uint64_t in_flight = 0;

    // Moves to the window `id` when it is later than the current one (a clock stepping
    // back keeps the current window).
    template <typename Namer>
    void roll(std::int64_t new_id, time_point now, Namer&& namer) {
        if (new_id > id) {
            *this = period_account{new_id, namer(now), 0, 0, 0};
        }
    }

    void reserve(double usd) {
        reserved += usd;
        ++in_flight;
    }

    void release(double usd) {
        if (in_flight > 0) {
            --in_flight;
        }
        reserved = in_flight == 0 ? 0.0 : std::max(0.0, reserved - usd);
    }
};

// Recent timestamps of each request fingerprint of one key, bounded in count and age.
// Fingerprints are already hashes, so the table hashes them by identity; the least
// recently seen order is a list threaded through the entries themselves (the table's
// elements never move), and dropped entries are kept for reuse, so a key whose every
// request is new (the usual case) allocates nothing once warm.
class loop_tracker {
public:
    // How many earlier identical requests fall inside the window, after dropping expired
    // entries; frees_at is when enough of them leave for one more to pass.
    struct verdict {
        std::size_t earlier = 0;
        time_point frees_at{};
    };

    loop_tracker() = default;
    loop_tracker(const loop_tracker&) = delete;
    loop_tracker& operator=(const loop_tracker&) = delete;

    verdict check(std::uint64_t fp, time_point now, time_point::duration window,
                  std::uint64_t loop_max) {
        purge(now, window);
        verdict v;
        const auto it = entries_.find(fp);
        if (it == entries_.end()) {
            return v;
        }
        auto& seen = it->second.seen;
        const auto live =
            std::find_if(seen.begin(), seen.end(), [&](time_point t) { return t > now - window; });
        seen.erase(seen.begin(), live);
        v.earlier = seen.size();
        if (v.earlier >= loop_max) {
            v.frees_at = loop_max == 0 ? now + window : seen[v.earlier - loop_max] + window;
        }
        return v;
    }

    void record(std::uint64_t fp, time_point now, std::uint64_t loop_max) {
        auto it = entries_.find(fp);
        if (it == entries_.end()) {
            it = insert(fp);
        } else {
            unlink(it->second);
        }
        entry& e = it->second;
        link_last(e);
        e.seen.push_back(now);
        if (e.seen.size() > loop_max) { // only the last loop_max decide the next one
            e.seen.erase(e.seen.begin(), e.seen.end() - static_cast<std::ptrdiff_t>(loop_max));
        }
        while (entries_.size() > max_fingerprints_per_key) {
            drop(*first_);
        }
    }

private:
    struct entry {
        std::uint64_t fp = 0;
        // At most loop_max times, oldest first.
        std::vector<time_point> seen;
        entry* prev = nullptr; // less recently seen
        entry* next = nullptr; // more recently seen
    };
    struct identity {
        std::size_t operator()(std::uint64_t fp) const { return static_cast<std::size_t>(fp); }
    };
    using table = std::unordered_map<std::uint64_t, entry, identity>;
    static constexpr std::size_t max_spare = 16;

    // A new entry for fp, in a node dropped earlier when there is one.
    table::iterator insert(std::uint64_t fp) {
        if (spare_.empty()) {
            const auto it = entries_.try_emplace(fp).first;
            it->second.fp = fp;
            return it;
        }
        table::node_type node = std::move(spare_.back());
        spare_.pop_back();
        node.key() = fp;
        node.mapped().fp = fp;
        node.mapped().seen.clear(); // keeps its capacity
        return entries_.insert(std::move(node)).position;
    }

    void drop(entry& e) {
        unlink(e);
        auto node = entries_.extract(e.fp);
        if (spare_.size() < max_spare) {
            spare_.push_back(std::move(node));
        }
    }

    void unlink(entry& e) {
        (e.prev != nullptr ? e.prev->next : first_) = e.next;
        (e.next != nullptr ? e.next->prev : last_) = e.prev;
        e.prev = e.next = nullptr;
    }

    void link_last(entry& e) {
        e.prev = last_;
        e.next = nullptr;
        (last_ != nullptr ? last_->next : first_) = &e;
        last_ = &e;
    }

    // Drops fingerprints whose last sighting left the window (least recent first).
    void purge(time_point now, time_point::duration window) {
        while (first_ != nullptr && (first_->seen.empty() || first_->seen.back() <= now - window)) {
            drop(*first_);
        }
    }

    table entries_;
    entry* first_ = nullptr; // least recently seen
    entry* last_ = nullptr;  // most recently seen
    std::vector<table::node_type> spare_;
};

// Everything the ledger knows about one key.
struct key_state {
    period_account day;
    period_account month;
    double reserved_total = 0;
    std::uint64_t in_flight = 0;
    rolling_window requests;
    rolling_window tokens;
    loop_tracker loops;

    void roll(time_point now) {
        day.roll(day_number(now), now, day_period);
        month.roll(month_number(now), now, month_period);
    }
};

// One lock and the keys hashed to it, each on cache lines of its own (a worker busy with
// one key does not slow down another's lock on a neighbouring shard).
struct alignas(64) shard {
    mutable adaptive_mutex mutex;
    std::unordered_map<std::string, key_state> keys;
};

void fill_headers(const key_state& st, const config::limits& limits, std::int64_t now_sec,
                  rate_headers& h) {
    h = rate_headers{};
    if (limits.rpm) {
        h.has_requests = true;
        h.limit_requests = *limits.rpm;
        h.remaining_requests = saturating_sub(*limits.rpm, st.requests.total(now_sec));
        h.reset_requests = std::chrono::seconds(st.requests.until_oldest_expires(now_sec));
    }
    if (limits.tpm) {
        h.has_tokens = true;
        h.limit_tokens = *limits.tpm;
        h.remaining_tokens = saturating_sub(*limits.tpm, st.tokens.total(now_sec));
        h.reset_tokens = std::chrono::seconds(st.tokens.until_oldest_expires(now_sec));
    }
}

} // namespace

// The shards and the clock; the store pointer is used outside the locks only.
struct local_ledger::impl {
    wall_clock now;
    spend_store* persist = nullptr;
    std::array<shard, shard_count> shards;

    shard& shard_for(const std::string& key_id) {
        return shards[std::hash<std::string>{}(key_id) % shard_count];
    }
    const shard& shard_for(const std::string& key_id) const {
        return shards[std::hash<std::string>{}(key_id) % shard_count];
    }

    // Runs f(state) under the key's lock, or returns fallback for an unknown key.
    template <typename T, typename F>
    T read(const std::string& key_id, T fallback, F&& f) const {
        const shard& s = shard_for(key_id);
        std::lock_guard lock(s.mutex);
        const auto it = s.keys.find(key_id);
        return it == s.keys.end() ? fallback : f(it->second);
    }
};

local_ledger::local_ledger(wall_clock now, spend_store* persist) : impl_(std::make_unique<impl>()) {
    impl_->now = std::move(now);
    impl_->persist = persist;
    if (persist == nullptr) {
        return;
    }
    const time_point t = impl_->now();
    const std::string today = day_period(t);
    const std::string this_month = month_period(t);
    for (const auto& row : persist->load()) {
        if (row.period != today && row.period != this_month) {
            continue;
        }
        shard& s = impl_->shard_for(row.key_id);
        std::lock_guard lock(s.mutex);
        key_state& st = s.keys[row.key_id];
        st.roll(t);
        period_account& a = row.period == today ? st.day : st.month;
        a.spent += detail::sane_usd(row.usd);
    }
}

local_ledger::~local_ledger() = default;

std::variant<reservation, refusal> local_ledger::admit(const admission_request& req,
                                                       rate_headers& headers) {
    const time_point now = impl_->now();
    const std::int64_t now_sec = epoch_seconds(now);
    const config::limits& lim = req.limits;
    const bool loop_guarded = lim.loop_max.has_value() && req.loop_fingerprint.has_value();
    const config::duration loop_window = lim.loop_window.value_or(default_loop_window);
    const double est_cost = detail::sane_usd(req.est_cost_usd);

    shard& s = impl_->shard_for(req.key_id);
    std::lock_guard lock(s.mutex);
    key_state& st = s.keys[req.key_id];
    st.roll(now);

    const auto refuse = [&](refusal_kind kind, std::string message, std::chrono::seconds retry) {
        fill_headers(st, lim, now_sec, headers);
        return refusal{kind, std::move(message), retry};
    };

    if (lim.daily_usd && st.day.spent + st.day.reserved >= *lim.daily_usd) {
        const time_point resets = next_day(now);
        return refuse(refusal_kind::budget_daily,
                      detail::budget_message("Daily", *lim.daily_usd, req.key_id, st.day.spent,
                                             st.day.reserved, resets),
                      detail::seconds_until(resets, now));
    }
    if (lim.monthly_usd && st.month.spent + st.month.reserved >= *lim.monthly_usd) {
        const time_point resets = next_month(now);
        return refuse(refusal_kind::budget_monthly,
                      detail::budget_message("Monthly", *lim.monthly_usd, req.key_id,
                                             st.month.spent, st.month.reserved, resets),
                      detail::seconds_until(resets, now));
    }
    if (lim.rpm && st.requests.total(now_sec) >= *lim.rpm) {
        return refuse(refusal_kind::rpm, detail::rate_message(req.key_id, *lim.rpm, "requests"),
                      std::chrono::seconds(st.requests.until_below(now_sec, *lim.rpm)));
    }
    if (lim.tpm && st.tokens.total(now_sec) >= *lim.tpm) {
        return refuse(refusal_kind::tpm, detail::rate_message(req.key_id, *lim.tpm, "tokens"),
                      std::chrono::seconds(st.tokens.until_below(now_sec, *lim.tpm)));
    }
    if (loop_guarded) {
        const auto v = st.loops.check(*req.loop_fingerprint, now, loop_window, *lim.loop_max);
        if (v.earlier >= *lim.loop_max) {
            const std::size_t sent = v.earlier + 1;
            return refuse(refusal_kind::loop, detail::loop_message(req.key_id, sent, loop_window),
                          detail::seconds_until(v.frees_at, now));
        }
    }

    st.requests.add(now_sec, 1);
    st.tokens.add(now_sec, req.est_tokens);
    if (req.free) {
        // Nothing held: the headers read the tokens estimate as any request's do (the same
        // x-ratelimit-* values), then it is given back at once, as settling it to zero would.
        if (loop_guarded) {
            st.loops.record(*req.loop_fingerprint, now, *lim.loop_max);
        }
        fill_headers(st, lim, now_sec, headers);
        st.tokens.adjust(now_sec, now_sec,
                         -static_cast<std::int64_t>(std::min<std::uint64_t>(
                             req.est_tokens, std::numeric_limits<std::int64_t>::max())));
        reservation r;
        r.settled = true;
        return r;
    }
    st.day.reserve(est_cost);
    st.month.reserve(est_cost);
    st.reserved_total += est_cost;
    ++st.in_flight;
    if (loop_guarded) {
        st.loops.record(*req.loop_fingerprint, now, *lim.loop_max);
    }
    fill_headers(st, lim, now_sec, headers);

    reservation r;
    r.key_id = req.key_id;
    r.day = st.day.name;
    r.month = st.month.name;
    r.cost_usd = est_cost;
    r.tokens = req.est_tokens;
    r.at = now;
    return r;
}

void local_ledger::settle(reservation& r, double actual_cost_usd, std::uint64_t actual_tokens) {
    if (r.settled) {
        return;
    }
    r.settled = true;
    const double cost = detail::sane_usd(actual_cost_usd);
    const time_point now = impl_->now();
    {
        shard& s = impl_->shard_for(r.key_id);
        std::lock_guard lock(s.mutex);
        const auto it = s.keys.find(r.key_id);
        if (it != s.keys.end()) {
            key_state& st = it->second;
            st.roll(now);
            // A window that has rolled since admission started fresh without this hold.
            if (st.day.name == r.day) {
                st.day.release(r.cost_usd);
                st.day.spent += cost;
            }
            if (st.month.name == r.month) {
                st.month.release(r.cost_usd);
                st.month.spent += cost;
            }
            if (st.in_flight > 0) {
                --st.in_flight;
            }
            st.reserved_total =
                st.in_flight == 0 ? 0.0 : std::max(0.0, st.reserved_total - r.cost_usd);
            const auto clamp = [](std::uint64_t v) {
                return static_cast<std::int64_t>(
                    std::min<std::uint64_t>(v, std::numeric_limits<std::int64_t>::max()));
            };
            st.tokens.adjust(epoch_seconds(r.at), epoch_seconds(now),
                             clamp(actual_tokens) - clamp(r.tokens));
        }
    }
    if (impl_->persist != nullptr && cost > 0) {
        impl_->persist->add(r.key_id, r.day, r.month, cost);
    }
}

double local_ledger::spent_today(const std::string& key_id) const {
    return usage(key_id).spent_today;
}

double local_ledger::spent_this_month(const std::string& key_id) const {
    return usage(key_id).spent_this_month;
}

double local_ledger::reserved(const std::string& key_id) const { return usage(key_id).reserved; }

std::uint64_t local_ledger::requests_last_minute(const std::string& key_id) const {
    return usage(key_id).requests_last_minute;
}

std::uint64_t local_ledger::tokens_last_minute(const std::string& key_id) const {
    return usage(key_id).tokens_last_minute;
}

key_usage local_ledger::usage(const std::string& key_id) const {
    const time_point now = impl_->now();
    const std::int64_t now_sec = epoch_seconds(now);
    return impl_->read(key_id, key_usage{}, [&](const key_state& st) {
        return key_usage{st.day.id >= day_number(now) ? st.day.spent : 0.0,
                         st.month.id >= month_number(now) ? st.month.spent : 0.0, st.reserved_total,
                         st.requests.total(now_sec), st.tokens.total(now_sec)};
    });
}

std::optional<admission> local_ledger::try_admit(const admission_request& req,
                                                 rate_headers& headers) {
    auto result = admit(req, headers);
    if (auto* r = std::get_if<reservation>(&result)) {
        return admission(std::move(*r));
    }
    return admission(std::move(std::get<refusal>(result)));
}

awaitable<admission> local_ledger::admit_async(const admission_request& req,
                                               rate_headers& headers) {
    co_return *try_admit(req, headers);
}

awaitable<std::optional<key_usage>> local_ledger::figures(std::string key_id) {
    co_return usage(key_id);
}

awaitable<error_code> local_ledger::mark_revoked(std::string) { co_return error_code{}; }

} // namespace michi::guard
