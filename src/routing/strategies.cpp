#include "michi/routing/strategies.hpp"

#include "michi/routing/retry.hpp"
#include "michi/routing/route_table.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <memory>
#include <numeric>

namespace michi::routing {
namespace {

// Room for one value per target: on the stack for a route's few targets, else on the heap.
template <class T>
class per_target {
public:
    explicit per_target(std::size_t n) : size_(n) {
        if (n > small_.size()) {
            big_ = std::make_unique_for_overwrite<T[]>(n);
            data_ = big_.get();
        } else {
            data_ = small_.data();
        }
    }
    T& operator[](std::size_t i) noexcept { return data_[i]; }
    std::span<T> all() noexcept { return {data_, size_}; }

private:
    std::array<T, 16> small_;
    std::unique_ptr<T[]> big_; // (a pointer to test when it goes: cheaper than a vector)
    T* data_;
    std::size_t size_;
};

// What the order is sorted by, one per target.
using sort_keys = per_target<std::int64_t>;

// sort_by's for a route of more than 32 targets: a merge sort.
[[gnu::noinline]] void sort_many(sort_keys& key, std::span<std::size_t> out) {
    std::iota(out.begin(), out.end(), std::size_t{0});
    std::stable_sort(out.begin(), out.end(),
                     [&](std::size_t a, std::size_t b) { return key[a] < key[b]; });
}

// out: the indices in the keys' order (ties in index order). An insertion sort, which writes
// the indices as it goes, for a route's few targets (std::stable_sort takes a buffer from the
// heap); a merge sort past 32.
inline void sort_by(sort_keys& key, std::span<std::size_t> out) {
    const std::size_t n = out.size();
    if (n > 32) {
        sort_many(key, out);
        return;
    }
    if (n == 3) {
        // The usual route of a few deployments: three compare-and-swaps (a bubble sort, which
        // swaps only on a lower key: ties stay in index order), no loop.
        std::size_t a = 0;
        std::size_t b = 1;
        std::size_t c = 2;
        const auto order = [&](std::size_t& x, std::size_t& y) {
            if (key[y] < key[x]) {
                std::swap(x, y);
            }
        };
        order(a, b);
        order(b, c);
        order(a, b);
        out[0] = a;
        out[1] = b;
        out[2] = c;
        return;
    }
    for (std::size_t i = 0; i < n; ++i) {
        const std::int64_t k = key[i];
        std::size_t j = i;
        for (; j > 0 && k < key[out[j - 1]]; --j) {
            out[j] = out[j - 1];
        }
        out[j] = i;
    }
}

// Text appended to a std::string.
void put(std::string& out, std::string_view s) { out.append(s); }

// A number as text, appended (shortest form; no locale, no allocation of its own).
template <class T>
void append_number(std::string& out, T value) {
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    put(out, std::string_view(buf, ec == std::errc{} ? end : buf));
}

// The decimal digits of v, written backwards to end; returns where they start.
char* digits_before(char* end, std::uint64_t v) {
    do {
        *--end = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return end;
}

// Room for what a strategy saw of its first target, written backwards from its end.
using seen_buffer = std::array<char, 64>;

// What a least_busy route saw of its first target: "<n> in flight)", in buf.
std::string_view in_flight_text(seen_buffer& buf, std::int64_t in_flight) {
    constexpr std::string_view tail = " in flight)";
    char* end = buf.data() + buf.size();
    char* p = end - tail.size();
    std::memcpy(p, tail.data(), tail.size());
    if (in_flight < 0) { // (not seen: a count ends before it starts)
        p = digits_before(p, static_cast<std::uint64_t>(-(in_flight + 1)) + 1);
        *--p = '-';
    } else {
        p = digits_before(p, static_cast<std::uint64_t>(in_flight));
    }
    return {p, static_cast<std::size_t>(end - p)};
}

// What a latency route saw of its first target: "time to first byte ~<ms, one decimal> ms)",
// in buf.
std::string_view ttfb_text(seen_buffer& buf, std::chrono::microseconds us) {
    constexpr std::string_view head = "time to first byte ~";
    constexpr std::string_view tail = " ms)";
    const auto tenths =
        static_cast<std::uint64_t>(std::max<std::int64_t>(0, us.count()) + 50) / 100;
    char* end = buf.data() + buf.size();
    char* p = end - tail.size();
    std::memcpy(p, tail.data(), tail.size());
    *--p = static_cast<char>('0' + tenths % 10);
    *--p = '.';
    p = digits_before(p, tenths / 10);
    p -= head.size();
    std::memcpy(p, head.data(), head.size());
    return {p, static_cast<std::size_t>(end - p)};
}

// n bytes copied, for the few dozen of a reason's parts: two overlapping moves of a fixed
// size where they cover it (a handful of instructions), memcpy past 64 bytes.
inline void copy_short(char* to, const char* from, std::size_t n) {
    if (n > 64) {
        std::memcpy(to, from, n);
    } else if (n >= 32) {
        std::memcpy(to, from, 32);
        std::memcpy(to + n - 32, from + n - 32, 32);
    } else if (n >= 16) {
        std::memcpy(to, from, 16);
        std::memcpy(to + n - 16, from + n - 16, 16);
    } else if (n >= 8) {
        std::memcpy(to, from, 8);
        std::memcpy(to + n - 8, from + n - 8, 8);
    } else {
        for (std::size_t i = 0; i < n; ++i) {
            to[i] = from[i];
        }
    }
}

// A reason made of its start and what the strategy saw: its room sized once, both copied in.
[[gnu::always_inline]] inline std::string_view
write_reason(reason_text& out, std::string_view start, std::string_view seen) {
    out.resize(start.size() + seen.size(), boost::container::default_init);
    copy_short(out.data(), start.data(), start.size());
    copy_short(out.data() + start.size(), seen.data(), seen.size());
    return {out.data(), out.size()};
}

// A weight as text: a whole one as an integer (the usual case, and a tenth of the work).
void append_weight(std::string& out, double w) {
    if (w >= 0 && w < 1e15 && w == static_cast<double>(static_cast<std::int64_t>(w))) {
        append_number(out, static_cast<std::int64_t>(w));
    } else {
        append_number(out, w);
    }
}

// A uniform number in [0, limit): one draw of the generator (32 bits are plenty for weights).
double uniform_below(double limit, random_engine& rng) {
    return limit * (static_cast<double>(rng()) * (1.0 / 4294967296.0));
}

constexpr std::int64_t busy_key_max = std::int64_t{1} << 46;

// The strategies on what they read of each target, as choose_order and the *_order functions
// share them. Each fills out with an order of [0, out.size()).

// Weighted: drawn by weight without replacement, the first, then the next from those left.
template <class Weight>
pick_reason weighted_core(Weight weight, random_engine& rng, std::span<std::size_t> out) {
    double left = 0;
    for (std::size_t i = 0; i < out.size(); ++i) {
        out[i] = i;
        left += weight(i);
    }
    for (std::size_t i = 0; i + 1 < out.size(); ++i) {
        double x = uniform_below(left, rng);
        std::size_t pick = out.size() - 1;
        for (std::size_t j = i; j < out.size(); ++j) {
            x -= weight(out[j]);
            if (x < 0) {
                pick = j;
                break;
            }
        }
        left -= weight(out[pick]);
        std::swap(out[i], out[pick]);
    }
    return pick_reason::weight;
}

// Least busy's key: the requests in flight above, a tie break below (tied targets go in a
// random order).
std::int64_t busy_key(std::int64_t in_flight, tie_breaks& ties) {
    return static_cast<std::int64_t>(
        (static_cast<std::uint64_t>(std::clamp<std::int64_t>(in_flight, 0, busy_key_max)) << 16) |
        ties.next());
}

// The requests in flight a busy_key says.
std::int64_t in_flight_of(std::int64_t busy_key) { return busy_key >> 16; }

// Least busy: by requests in flight, ties in random order (the keys).
pick_reason least_busy_core(sort_keys& key, std::span<std::size_t> out) {
    sort_by(key, out);
    return pick_reason::least_busy;
}

// Latency's key: the average time to first byte in microseconds; -1 for a target not measured
// yet, so that it goes first (it must be seen once).
std::int64_t latency_key(const std::optional<std::chrono::microseconds>& ttfb) {
    return ttfb ? std::max<std::int64_t>(0, ttfb->count()) : -1;
}

// Latency: unmeasured first, then by average time to first byte (the keys); now and then
// another target first. (Inlined into choose_order: a call's frame cost a fifth of it.)
[[gnu::always_inline]] inline pick_reason latency_core(sort_keys& key, random_engine& rng,
                                                       std::span<std::size_t> out) {
    sort_by(key, out);
    if (key[out.front()] < 0) {
        return pick_reason::unmeasured;
    }
    if (out.size() < 2) {
        return pick_reason::fastest;
    }
    // One draw says whether to explore and, when it does, where: below the exploration's
    // share of its range it explores, and its place there picks the target.
    constexpr auto explore_below =
        static_cast<std::uint64_t>(latency_exploration * 4294967296.0); // of 2^32
    if (const std::uint64_t x = rng(); x < explore_below) {
        // Another target first, so a slow one that recovered is measured again.
        const auto i = static_cast<std::ptrdiff_t>(1 + x * (out.size() - 1) / explore_below);
        std::rotate(out.begin(), out.begin() + i, out.begin() + i + 1);
        return pick_reason::exploring;
    }
    return pick_reason::fastest;
}

} // namespace

pick_reason weighted_order(std::span<const target_view> targets, random_engine& rng,
                           std::span<std::size_t> out) {
    return weighted_core([&](std::size_t i) { return targets[i].weight; }, rng, out);
}

pick_reason least_busy_order(std::span<const target_view> targets, random_engine& rng,
                             std::span<std::size_t> out) {
    sort_keys key(out.size());
    tie_breaks ties(rng);
    for (std::size_t i = 0; i < out.size(); ++i) {
        key[i] = busy_key(targets[i].in_flight, ties);
    }
    return least_busy_core(key, out);
}

pick_reason latency_order(std::span<const target_view> targets, random_engine& rng,
                          std::span<std::size_t> out) {
    sort_keys key(out.size());
    for (std::size_t i = 0; i < out.size(); ++i) {
        key[i] = latency_key(targets[i].ttfb);
    }
    return latency_core(key, rng, out);
}

pick_reason weighted_order(std::span<const target_view> targets, random_engine& rng,
                           std::vector<std::size_t>& out) {
    out.resize(targets.size());
    return weighted_order(targets, rng, std::span<std::size_t>(out));
}
pick_reason least_busy_order(std::span<const target_view> targets, random_engine& rng,
                             std::vector<std::size_t>& out) {
    out.resize(targets.size());
    return least_busy_order(targets, rng, std::span<std::size_t>(out));
}
pick_reason latency_order(std::span<const target_view> targets, random_engine& rng,
                          std::vector<std::size_t>& out) {
    out.resize(targets.size());
    return latency_order(targets, rng, std::span<std::size_t>(out));
}

bool per_request_order(const dispatch_plan& plan) noexcept {
    using config::route_strategy;
    return plan.candidates.size() > 1 && (plan.strategy == route_strategy::weighted ||
                                          plan.strategy == route_strategy::least_busy ||
                                          plan.strategy == route_strategy::latency);
}

target_signals* signals_of(const dispatch_plan& plan, const candidate& c, signal_board& board) {
    if (c.signals != nullptr || plan.route.empty()) {
        return c.signals;
    }
    return board.find(c.model->name);
}

std::string reason_start(config::route_strategy strategy, const candidate& first) {
    std::string reason = config::to_string(strategy);
    reason += ": ";
    reason += first.model->name;
    reason += " (";
    return reason;
}

std::string weighted_reason(const candidate& first, double total) {
    std::string reason = reason_start(config::route_strategy::weighted, first);
    reason += "weight ";
    append_weight(reason, first.weight);
    reason += " of ";
    append_weight(reason, total);
    reason += ")";
    return reason;
}

std::string_view choose_order(dispatch_plan& plan, signal_board& board, const cooldowns& cd,
                              random_engine& rng, reason_text& reason) {
    if (!per_request_order(plan)) {
        if (cd.any()) {
            cooling_last(plan.candidates, cd);
        }
        return {};
    }
    const std::size_t n = plan.candidates.size();
    const auto strategy = plan.strategy;
    const auto& cs = plan.candidates;
    // What the strategy reads of each target (its key), then the order.
    per_target<std::size_t> room(n);
    const std::span<std::size_t> order = room.all();
    sort_keys key(n);
    pick_reason why = pick_reason::weight;
    switch (strategy) {
    case config::route_strategy::least_busy: {
        tie_breaks ties(rng);
        for (std::size_t i = 0; i < n; ++i) {
            const auto* s =
                cs[i].signals != nullptr ? cs[i].signals : signals_of(plan, cs[i], board);
            key[i] = busy_key(s != nullptr ? s->in_flight() : 0, ties);
        }
        why = least_busy_core(key, order);
        break;
    }
    case config::route_strategy::latency:
        for (std::size_t i = 0; i < n; ++i) {
            const auto* s =
                cs[i].signals != nullptr ? cs[i].signals : signals_of(plan, cs[i], board);
            key[i] = s != nullptr ? latency_key(s->ttfb()) : -1;
        }
        why = latency_core(key, rng, order);
        break;
    default: why = weighted_core([&](std::size_t i) { return cs[i].weight; }, rng, order); break;
    }
    const std::size_t chosen = order.front();
    // In flight, or the time to first byte (µs).
    const std::int64_t seen =
        strategy == config::route_strategy::least_busy ? in_flight_of(key[chosen]) : key[chosen];
    reorder(plan.candidates, order);
    const bool cooled = cd.any() && cooling_last(plan.candidates, cd);
    // Every target of the route taking part: the reason's texts for each were written once.
    const auto* prep = plan.prepared != nullptr && plan.prepared->reasons.size() == n && !cooled
                           ? plan.prepared
                           : nullptr;
    if (prep != nullptr) {
        if (why == pick_reason::weight) {
            return prep->reasons[chosen];
        }
        if (why == pick_reason::least_busy) {
            if (const auto* whole = prep->busy_reason(chosen, seen)) {
                return *whole;
            }
        }
    } else if (why == pick_reason::weight && !cooled) {
        double total = 0;
        for (const auto& c : plan.candidates) {
            total += c.weight;
        }
        return write_reason(reason, weighted_reason(plan.candidates.front(), total), "");
    }
    // The start, then what the strategy saw, written here (at most a few dozen bytes).
    seen_buffer buf;
    std::string_view saw = "";
    if (cooled) {
        saw = "the chosen ones are cooling down)";
    } else {
        switch (why) {
        case pick_reason::weight: break; // (above)
        case pick_reason::least_busy: saw = in_flight_text(buf, seen); break;
        case pick_reason::fastest: saw = ttfb_text(buf, std::chrono::microseconds(seen)); break;
        case pick_reason::unmeasured: saw = "not measured yet)"; break;
        case pick_reason::exploring: saw = "exploring)"; break;
        }
    }
    if (prep != nullptr) {
        return write_reason(reason, prep->reasons[chosen], saw);
    }
    return write_reason(reason, reason_start(strategy, plan.candidates.front()), saw);
}

std::string busy_reason_end(std::int64_t in_flight) {
    seen_buffer buf;
    return std::string(in_flight_text(buf, in_flight));
}

} // namespace michi::routing
