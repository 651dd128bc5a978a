#pragma once
// Common shapes of the provider translators: pure functions (no I/O) from an OpenAI chat
// request to a provider's request, and from the provider's responses and stream events
// back to OpenAI responses and chunks. Unit-tested with golden fixtures and fuzzed.

#include "michi/core/usage.hpp"
#include "michi/stream/sse.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace michi::providers {

// Token usage as the provider reported it.
struct usage_info {
    bool known = false;
    std::uint64_t prompt_tokens = 0;         // all input tokens, cached ones included
    std::uint64_t completion_tokens = 0;     // reasoning included
    std::uint64_t cache_read_tokens = 0;     // part of prompt_tokens
    std::uint64_t cache_write_tokens = 0;    // part of prompt_tokens: every cache write
    std::uint64_t cache_write_1h_tokens = 0; // part of cache_write_tokens: 1 hour writes
    std::uint64_t reasoning_tokens = 0;      // part of completion_tokens

    // Known usage of every kind.
    static usage_info from(const token_usage& u) noexcept {
        return {true,         u.total_input(), u.output,
                u.cache_read, u.cache_write(), u.cache_write_1h,
                u.reasoning};
    }

    // Every kind of token, as prices are applied to them.
    token_usage tokens() const noexcept {
        token_usage u;
        u.input = prompt_tokens;
        u.cache_read = cache_read_tokens;
        u.cache_write_1h = std::min(cache_write_1h_tokens, cache_write_tokens);
        u.cache_write_5m = cache_write_tokens - u.cache_write_1h;
        u.output = completion_tokens;
        u.reasoning = std::min(reasoning_tokens, completion_tokens);
        return u;
    }
};

// A request in the provider's dialect: path appended to the provider's base_url path
// (with its query, if any), headers to set (auth included), JSON body.
struct upstream_request {
    std::string path;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

// A request the translator cannot express: a 400 for the client.
struct translate_error {
    std::string message;
    std::string param; // the offending request field, may be empty
    // A well-formed request asking what the target cannot do (400 unsupported_parameter),
    // not a malformed one (400 invalid_request_error).
    bool unsupported = false;
};

template <class T>
using translated = std::variant<T, translate_error>;

// Turns a provider's stream events into OpenAI chat.completion.chunk payloads.
class chunk_translator {
public:
    virtual ~chunk_translator() = default;
    // Appends zero or more chunk JSON texts (no "data: " framing, no [DONE]) for one
    // upstream event. Returns false when the event is an upstream error (error_message()
    // then says what); the stream must then end.
    virtual bool on_event(const stream::sse_event& ev, std::vector<std::string>& out) = 0;
    // The provider signalled the end of its stream (message_stop, finishReason + end...).
    virtual bool finished() const = 0;
    virtual const usage_info& usage() const = 0;
    virtual std::string error_message() const = 0;
};

} // namespace michi::providers
