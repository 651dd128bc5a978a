#pragma once
// Prices and token expectations: what a request is expected to cost before it goes
// upstream, and what it cost once its usage is known, as providers bill it (cache reads,
// cache writes, long-context tiers). Exact to the nano-dollar: integer arithmetic on prices
// kept to the micro-dollar per million tokens.

#include "michi/config/config.hpp"
#include "michi/core/usage.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace michi::routing {

// Output tokens assumed when a request sets neither max_tokens nor max_completion_tokens.
inline constexpr std::uint64_t default_output_estimate = 512;

bool is_priced(const config::model_config& m) noexcept;

// What the usage cost in nano-dollars (10^-9 USD), rounded to the nearest: uncached input at
// the input price, cache reads at cache_read, 5 minute writes at cache_write, 1 hour writes at
// cache_write_1h, output at the output price; all at the long_context prices when the input
// (all kinds) exceeds long_context.above_input_tokens. A cache price left unset charges those
// tokens at the input price (1 h writes at the 5 min price first). Unpriced parts count as 0;
// saturates rather than overflows.
std::uint64_t cost_nano_usd(const config::model_config& m, const token_usage& u) noexcept;
// The same in USD.
double cost_usd(const config::model_config& m, const token_usage& u) noexcept;
// USD for `in` input tokens (none cached) and `out` output tokens.
double cost_usd(const config::model_config& m, std::uint64_t in, std::uint64_t out) noexcept;
// Nano-dollars as exact decimal USD text, for x-michi-cost-usd: 72000000 -> "0.072",
// 0 -> "0", 1 -> "0.000000001".
std::string usd_text(std::uint64_t nano);
// What prompt caching saved: the cost with every input token at the input price, less the
// cost charged (negative when cache writes cost more than cache reads saved).
double cache_savings_usd(const config::model_config& m, const token_usage& u) noexcept;

// cost_nano_usd and cache_savings_usd of one usage, its rates looked up once.
struct priced_usage {
    std::uint64_t cost_nano = 0;
    double saved_usd = 0;
};
priced_usage price(const config::model_config& m, const token_usage& u) noexcept;

// max_completion_tokens, else max_tokens, else default_output_estimate.
std::uint64_t expected_output_tokens(const nlohmann::json& body) noexcept;

} // namespace michi::routing
