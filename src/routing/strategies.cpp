#include "michi/routing/strategies.hpp"

#include "michi/routing/retry.hpp"
#include "michi/routing/route_table.hpp"

#include <algorithm>
#include <charconv>
#include <numeric>

namespace michi::routing {
namespace {

void identity(std::size_t n, std::vector<std::size_t>& out) {
    out.resize(n);
    std::iota(out.begin(), out.end(), std::size_t{0});
}

// A uniform index in [0, n): one 32-bit draw scaled (a bias below n / 2^32, nothing for a
// route's targets), without the division and rejection of a distribution object.
std::size_t draw(std::size_t n, random_engine& rng) {
    return static_cast<std::size_t>((static_cast<std::uint64_t>(rng()) * n) >> 32);
}

void shuffle(std::vector<std::size_t>& v, random_engine& rng) {
    for (std::size_t i = v.size(); i > 1; --i) {
        std::swap(v[i - 1], v[draw(i, rng)]);
    }
}

// A stable sort without an allocation (std::stable_sort takes a buffer from the heap): an
// insertion sort, for a route's few targets.
template <class Less>
void stable_small_sort(std::vector<std::size_t>& v, Less less) {
    if (v.size() > 32) {
        std::stable_sort(v.begin(), v.end(), less);
        return;
    }
    for (std::size_t i = 1; i < v.size(); ++i) {
        const std::size_t x = v[i];
        std::size_t j = i;
        for (; j > 0 && less(x, v[j - 1]); --j) {
            v[j] = v[j - 1];
        }
        v[j] = x;
    }
}

// Text appended to a std::string or a reason_text.
template <class Out>
void put(Out& out, std::string_view s) {
    out.insert(out.end(), s.begin(), s.end());
}

// A number as text, appended (shortest form; no locale, no allocation of its own).
template <class Out, class T>
void append_number(Out& out, T value) {
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    put(out, std::string_view(buf, ec == std::errc{} ? end : buf));
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

template <class Out>
void append_ms(Out& out, std::chrono::microseconds us) {
    const auto tenths = (us.count() + 50) / 100;
    append_number(out, tenths / 10);
    out.push_back('.');
    append_number(out, tenths % 10);
    put(out, " ms");
}

} // namespace

pick_reason weighted_order(std::span<const target_view> targets, random_engine& rng,
                           std::vector<std::size_t>& out) {
    identity(targets.size(), out);
    double left = 0;
    for (const auto& t : targets) {
        left += t.weight;
    }
    // Draw the first, then the next from those left, each by weight.
    for (std::size_t i = 0; i + 1 < out.size(); ++i) {
        double x = uniform_below(left, rng);
        std::size_t pick = out.size() - 1;
        for (std::size_t j = i; j < out.size(); ++j) {
            x -= targets[out[j]].weight;
            if (x < 0) {
                pick = j;
                break;
            }
        }
        left -= targets[out[pick]].weight;
        std::swap(out[i], out[pick]);
    }
    return pick_reason::weight;
}

pick_reason least_busy_order(std::span<const target_view> targets, random_engine& rng,
                             std::vector<std::size_t>& out) {
    identity(targets.size(), out);
    shuffle(out, rng); // ties in random order
    stable_small_sort(out, [&](std::size_t a, std::size_t b) {
        return targets[a].in_flight < targets[b].in_flight;
    });
    return pick_reason::least_busy;
}

pick_reason latency_order(std::span<const target_view> targets, random_engine& rng,
                          std::vector<std::size_t>& out) {
    identity(targets.size(), out);
    // Unmeasured first (they must be seen once), then by average time to first byte.
    stable_small_sort(out, [&](std::size_t a, std::size_t b) {
        const auto& x = targets[a].ttfb;
        const auto& y = targets[b].ttfb;
        return x.has_value() != y.has_value() ? !x.has_value() : x && *x < *y;
    });
    if (!targets[out.front()].ttfb) {
        return pick_reason::unmeasured;
    }
    if (out.size() > 1 && uniform_below(1.0, rng) < latency_exploration) {
        // Another target first, so a slow one that recovered is measured again.
        const std::size_t i = 1 + draw(out.size() - 1, rng);
        std::rotate(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(i),
                    out.begin() + static_cast<std::ptrdiff_t>(i) + 1);
        return pick_reason::exploring;
    }
    return pick_reason::fastest;
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
        cooling_last(plan.candidates, cd);
        return {};
    }
    const std::size_t n = plan.candidates.size();
    // This thread's, their room kept from one request to the next.
    thread_local std::vector<target_view> views;
    thread_local std::vector<std::size_t> idx;
    views.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        const auto& c = plan.candidates[i];
        views[i] = target_view{c.weight, 0, std::nullopt};
        if (plan.strategy == config::route_strategy::weighted) {
            continue;
        }
        if (const auto* s = signals_of(plan, c, board)) {
            if (plan.strategy == config::route_strategy::least_busy) {
                views[i].in_flight = s->in_flight();
            } else {
                views[i].ttfb = s->ttfb();
            }
        }
    }
    pick_reason why = pick_reason::weight;
    switch (plan.strategy) {
    case config::route_strategy::least_busy: why = least_busy_order(views, rng, idx); break;
    case config::route_strategy::latency: why = latency_order(views, rng, idx); break;
    default: why = weighted_order(views, rng, idx); break;
    }
    const std::size_t chosen = idx.front();
    const auto& first = views[chosen];
    reorder(plan.candidates, idx);
    const bool cooled = cooling_last(plan.candidates, cd);
    // Every target of the route taking part: the reason's text for each was written once.
    const auto* texts = plan.prepared != nullptr && plan.prepared->reasons.size() == n && !cooled
                            ? &plan.prepared->reasons
                            : nullptr;
    if (why == pick_reason::weight) {
        if (texts != nullptr) {
            return (*texts)[chosen];
        }
        if (!cooled) {
            double total = 0;
            for (const auto& v : views) {
                total += v.weight;
            }
            put(reason, weighted_reason(plan.candidates.front(), total));
            return {reason.data(), reason.size()};
        }
    }
    reason.clear();
    put(reason, texts != nullptr
                    ? std::string_view((*texts)[chosen])
                    : std::string_view(reason_start(plan.strategy, plan.candidates.front())));
    if (cooled) {
        put(reason, "the chosen ones are cooling down)");
        return {reason.data(), reason.size()};
    }
    switch (why) {
    case pick_reason::weight: break; // (above)
    case pick_reason::least_busy:
        append_number(reason, first.in_flight);
        put(reason, " in flight)");
        break;
    case pick_reason::fastest:
        put(reason, "time to first byte ~");
        append_ms(reason, *first.ttfb);
        put(reason, ")");
        break;
    case pick_reason::unmeasured: put(reason, "not measured yet)"); break;
    case pick_reason::exploring: put(reason, "exploring)"); break;
    }
    return {reason.data(), reason.size()};
}

} // namespace michi::routing
