#pragma once
// The load-spreading strategies: the order in which one request tries a route's targets,
// drawn per request. `weighted` draws by the targets' weights, `least_busy` puts the target
// with the fewest requests in flight first, `latency` the one with the lowest recent time to
// first byte (and now and then another, so a target that recovered is seen again). The rest
// of the order are the fallbacks, as with every route; targets cooling down go last.
// `fallback` and `cheapest` keep the order the router gave.

#include "michi/routing/cooldowns.hpp"
#include "michi/routing/plan.hpp"
#include "michi/routing/random.hpp"
#include "michi/routing/signals.hpp"

#include <boost/container/small_vector.hpp>

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace michi::routing {

// The share of `latency` requests that try another target than the fastest first.
inline constexpr double latency_exploration = 0.05;

// What a strategy reads of one target.
struct target_view {
    double weight = 1;
    std::int64_t in_flight = 0;
    std::optional<std::chrono::microseconds> ttfb; // none: not measured yet
};

// Why the first target came first (x-michi-route-reason).
enum class pick_reason { weight, least_busy, fastest, unmeasured, exploring };

// Each fills `out` with an order of [0, targets.size()) and says why the first is first.
// Weighted: drawn by weight without replacement (the first is target i with probability
// weight_i / sum). Least busy: fewest in flight first, ties in random order. Latency:
// targets not measured yet first, then the lowest average; with probability
// latency_exploration another target, at random, goes first.
// `out` has one place per target; the vector forms size it.
pick_reason weighted_order(std::span<const target_view> targets, random_engine& rng,
                           std::span<std::size_t> out);
pick_reason least_busy_order(std::span<const target_view> targets, random_engine& rng,
                             std::span<std::size_t> out);
pick_reason latency_order(std::span<const target_view> targets, random_engine& rng,
                          std::span<std::size_t> out);
pick_reason weighted_order(std::span<const target_view> targets, random_engine& rng,
                           std::vector<std::size_t>& out);
pick_reason least_busy_order(std::span<const target_view> targets, random_engine& rng,
                             std::vector<std::size_t>& out);
pick_reason latency_order(std::span<const target_view> targets, random_engine& rng,
                          std::vector<std::size_t>& out);

// A reason written for one request: inline up to its size (no allocation), on the heap past.
using reason_text = boost::container::small_vector<char, 160>;

// Whether the plan's order is drawn per request from the live signals.
bool per_request_order(const dispatch_plan& plan) noexcept;

// Puts the plan's candidates in the order the exchange tries them: the strategy's (weighted,
// least_busy, latency), then targets cooling down last, the soonest back first. Fallback and
// cheapest keep the plan's own order (with nothing cooling, the usual case, nothing is
// done). Returns why the first target is first, for a strategy that chose: one of the
// snapshot's texts (plan.prepared's, alive as long as it), or `made`, written for this request.
std::string_view choose_order(dispatch_plan& plan, signal_board& board, const cooldowns& cd,
                              random_engine& rng, reason_text& made);

// Why `first` goes first, as x-michi-route-reason says: "<strategy>: <name> (" and what the
// strategy saw, e.g. a weighted route's "weight w of total)".
std::string reason_start(config::route_strategy strategy, const candidate& first);
std::string weighted_reason(const candidate& first, double total);
// What follows reason_start for a least_busy route whose first target has `in_flight`.
std::string busy_reason_end(std::int64_t in_flight);

// The live signals of a candidate of the plan: the route's targets are measured (every
// strategy); a model asked for by name is not (null).
target_signals* signals_of(const dispatch_plan& plan, const candidate& c, signal_board& board);

} // namespace michi::routing
