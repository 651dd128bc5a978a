#pragma once
// Usage readers: each provider's and API's usage fields as a token_usage (every kind of input
// and output token), and the OpenAI chat usage object the gateway writes for the clients of
// translated responses. Pure functions with typed access: they never throw on any input.

#include "michi/core/usage.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string_view>

namespace michi::providers {

// OpenAI Chat Completions `usage`: prompt_tokens (cached included), completion_tokens
// (reasoning included), prompt_tokens_details.cached_tokens,
// completion_tokens_details.reasoning_tokens; DeepSeek's prompt_cache_hit_tokens when
// cached_tokens is absent; prompt_tokens_details.cache_write_tokens (what the gateway writes
// for translated Anthropic responses) as cache writes. nullopt unless `usage` is an object.
std::optional<token_usage> read_openai_chat_usage(const nlohmann::json& usage) noexcept;
// The same from the raw text of the usage object, without building a DOM (for the byte
// relay's hot path): nullopt unless the text is one JSON object.
std::optional<token_usage> read_openai_chat_usage(std::string_view usage) noexcept;

// OpenAI Responses API `usage`: input_tokens (cached included), output_tokens (reasoning
// included), input_tokens_details.cached_tokens, output_tokens_details.reasoning_tokens.
std::optional<token_usage> read_responses_usage(const nlohmann::json& usage) noexcept;
// The same from the raw text of the usage object, without building a DOM (passed-through
// Responses answers): nullopt unless the text is one JSON object.
std::optional<token_usage> read_responses_usage(std::string_view usage) noexcept;

// Gemini `usageMetadata`: promptTokenCount (cachedContentTokenCount included) plus
// toolUsePromptTokenCount are input; candidatesTokenCount plus thoughtsTokenCount are output.
std::optional<token_usage> read_gemini_usage(const nlohmann::json& usage_metadata) noexcept;

// Anthropic usage, where input_tokens EXCLUDES the cache: cache_read_input_tokens and
// cache_creation_input_tokens come on top, the writes split by lifetime in
// cache_creation.ephemeral_5m_input_tokens / ephemeral_1h_input_tokens (writes left out of the
// split count as 5 minute ones). In a stream, message_start carries the input side and each
// message_delta the cumulative counts so far: add() them in order, each field given replaces.
class anthropic_usage_tally {
public:
    void add(const nlohmann::json& usage) noexcept;
    // The same from the raw text of the object, without building a DOM (unless a count is
    // written otherwise than as a plain integer); text that is not an object is ignored.
    void add(std::string_view usage) noexcept;
    // A tally that holds `u` already (a stream's usage so far), as if read from Anthropic's
    // usage object for it.
    static anthropic_usage_tally of(const token_usage& u) noexcept;
    bool known() const noexcept { return known_; }
    token_usage tokens() const noexcept;

private:
    bool known_ = false;
    std::uint64_t input_ = 0; // uncached
    std::uint64_t output_ = 0;
    std::uint64_t cache_read_ = 0;
    std::uint64_t cache_creation_ = 0;
    std::uint64_t ephemeral_5m_ = 0;
    std::uint64_t ephemeral_1h_ = 0;
};
// One Anthropic usage object (a whole response's): nullopt unless it is an object.
std::optional<token_usage> read_anthropic_usage(const nlohmann::json& usage) noexcept;
// The same from the object's raw text.
std::optional<token_usage> read_anthropic_usage(std::string_view usage) noexcept;

// An OpenAI chat `usage` object for the usage: prompt_tokens, completion_tokens, total_tokens,
// prompt_tokens_details {cached_tokens, and cache_write_tokens when there are writes},
// completion_tokens_details {reasoning_tokens}.
nlohmann::json openai_chat_usage_json(const token_usage& u);
// An Anthropic `usage` object for the usage: input_tokens (uncached), output_tokens,
// cache_creation_input_tokens, cache_read_input_tokens, and the cache_creation split when
// there are 1 h writes.
nlohmann::json anthropic_usage_json(const token_usage& u);

} // namespace michi::providers
