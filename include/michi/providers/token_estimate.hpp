#pragma once
// Cheap token estimates (about four characters a token) for requests and texts.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string_view>

namespace michi::providers {

std::uint64_t estimate_text_tokens(std::string_view text) noexcept;
// Prompt tokens of a chat completions body: message texts plus a small per-message
// overhead; images count a flat amount.
std::uint64_t estimate_prompt_tokens(const nlohmann::json& request) noexcept;

} // namespace michi::providers
