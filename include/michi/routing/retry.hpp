#pragma once
// The order in which a plan's targets are tried and how long to wait between tries: targets
// cooling down go last, and a retry on the same target backs off (exponentially, with
// jitter) or waits for the upstream's retry-after.

#include "michi/routing/cooldowns.hpp"
#include "michi/routing/plan.hpp"
#include "michi/routing/random.hpp"

#include <chrono>
#include <span>
#include <string_view>
#include <vector>

namespace michi::routing {

inline constexpr std::chrono::milliseconds backoff_base{250};
inline constexpr std::chrono::milliseconds backoff_cap{4000};

// Moves the candidates cooling down behind the others, the soonest back first, as a last
// resort; the others keep their order. Nothing is done (or allocated) when none is cooling
// down, the usual case. True when the first candidate changed.
bool cooling_last(std::vector<candidate>& candidates, const cooldowns& cd);

// Puts the candidates in the given order: candidates[i] becomes the one at order[i] before
// (`order` is a permutation of their indices; it is used up).
void reorder(std::vector<candidate>& candidates, std::vector<std::size_t>& order);
void reorder(std::vector<candidate>& candidates, std::span<std::size_t> order);

// The wait before retry number n (1-based) on one target: base * 2^(n-1), capped, times a
// jitter in [0.5, 1.5).
std::chrono::milliseconds backoff(unsigned n, random_engine& rng);

// A retry-after header's seconds (0 when absent or not a number; at most a day).
std::chrono::milliseconds retry_after(std::string_view header) noexcept;

} // namespace michi::routing
