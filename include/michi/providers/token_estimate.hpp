#pragma once
// Cheap token estimates (about four characters a token) for requests and texts.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string_view>

namespace michi::providers {

// Added per chat message, and per image part (a flat amount whatever its size).
inline constexpr std::uint64_t per_message_overhead = 4;
inline constexpr std::uint64_t per_image = 765;

// From the text's length in bytes (decoded, as the JSON string's value).
std::uint64_t estimate_text_tokens(std::string_view text) noexcept;
std::uint64_t estimate_text_tokens(std::size_t bytes) noexcept;
// Prompt tokens of a chat completions body: message texts plus a small per-message
// overhead; images count a flat amount.
std::uint64_t estimate_prompt_tokens(const nlohmann::json& request) noexcept;

} // namespace michi::providers
