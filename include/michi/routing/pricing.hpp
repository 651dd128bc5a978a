#pragma once
// Prices and token expectations: what a request is expected to cost before it goes
// upstream, and what it cost once its usage is known.

#include "michi/config/config.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string_view>

namespace michi::pipeline {

// Output tokens assumed when a request sets neither max_tokens nor max_completion_tokens.
inline constexpr std::uint64_t default_output_estimate = 512;

bool is_priced(const config::model_config& m) noexcept;
// USD for the given tokens at the model's prices (unpriced parts count as 0).
double cost_usd(const config::model_config& m, std::uint64_t in, std::uint64_t out) noexcept;
// max_completion_tokens, else max_tokens, else default_output_estimate.
std::uint64_t expected_output_tokens(const nlohmann::json& body) noexcept;
// Characters of the `"content":"…"` strings in one chat.completion.chunk data payload,
// found by a cheap scan rather than a JSON parse (the relay's hot path).
std::size_t delta_content_chars(std::string_view data) noexcept;

} // namespace michi::pipeline
