#pragma once
// What the in-process ledger and the one kept in Redis share: the amounts they accept and
// the words they refuse with, so that a client reads the same from either.

#include "michi/config/config.hpp"

#include <chrono>
#include <cstdint>
#include <string>

namespace michi::guard::detail {

using time_point = std::chrono::system_clock::time_point;

// A usable USD amount: negative, NaN and infinite inputs count as 0.
double sane_usd(double usd);

// Whole seconds from now until t, rounded up, at least 1.
std::chrono::seconds seconds_until(time_point t, time_point now);
// "Daily budget of $5.00 for key "k" is used up ($5.01 spent, $0.02 in flight); it resets
// at 2026-11-28T00:00:00Z."
std::string budget_message(const char* window, double limit, const std::string& key, double spent,
                           double reserved, time_point resets);
std::string rate_message(const std::string& key, std::uint64_t limit, const char* unit);
std::string loop_message(const std::string& key, std::uint64_t sent, config::duration window);

} // namespace michi::guard::detail
