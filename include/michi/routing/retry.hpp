#pragma once
// The order in which a plan's targets are tried and how long to wait between tries: targets
// cooling down go last, and a retry on the same target backs off (exponentially, with
// jitter) or waits for the upstream's retry-after.

#include "michi/routing/cooldowns.hpp"
#include "michi/routing/plan.hpp"

#include <chrono>
#include <random>
#include <string_view>
#include <vector>

namespace michi::routing {

inline constexpr std::chrono::milliseconds backoff_base{250};
inline constexpr std::chrono::milliseconds backoff_cap{4000};

// Candidates not cooling down keep their order and go first; cooling ones follow, the
// soonest back first, as a last resort. Empty when none is cooling down (the usual case):
// the plan's own order stands, and nothing is allocated for it.
std::vector<const candidate*> order_candidates(const dispatch_plan& plan, const cooldowns& cd);

// The wait before retry number n (1-based) on one target: base * 2^(n-1), capped, times a
// jitter in [0.5, 1.5).
std::chrono::milliseconds backoff(unsigned n, std::mt19937& rng);

// A retry-after header's seconds (0 when absent or not a number; at most a day).
std::chrono::milliseconds retry_after(std::string_view header) noexcept;

} // namespace michi::routing
