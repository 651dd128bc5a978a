#pragma once
// The APIs Michi speaks: the one a client called (its surface) and the one a provider
// answers in. The same API on both sides means passthrough; different ones, translation.

#include <string_view>

namespace michi {

enum class api_kind {
    chat,         // OpenAI Chat Completions
    embeddings,   // OpenAI embeddings
    messages,     // Anthropic Messages
    responses,    // OpenAI Responses
    count_tokens, // Anthropic's token count of a Messages request
};

// The wire format of an API's errors and events.
enum class dialect { openai, anthropic };

constexpr dialect dialect_of(api_kind api) noexcept {
    return api == api_kind::messages || api == api_kind::count_tokens ? dialect::anthropic
                                                                      : dialect::openai;
}

constexpr std::string_view to_string(api_kind api) noexcept {
    switch (api) {
    case api_kind::chat: return "chat";
    case api_kind::embeddings: return "embeddings";
    case api_kind::messages: return "messages";
    case api_kind::responses: return "responses";
    case api_kind::count_tokens: return "count_tokens";
    }
    return "chat";
}

} // namespace michi
