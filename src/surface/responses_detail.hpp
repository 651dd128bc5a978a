#pragma once
// Private helpers shared by the Responses API translator's sources (responses_*.cpp): typed
// access to untrusted JSON that never throws, the errors, and the shapes both the whole
// answer and the stream writer build. Not a public interface.

#include "michi/core/usage.hpp"
#include "michi/providers/translate.hpp"

#include "michi/core/json_fields.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace michi::surface::responses::detail {

using json = nlohmann::json;

// Thrown inside request_to_chat and caught at its boundary.
struct failure {
    providers::translate_error error;
};

// A malformed request (400 invalid_request_error).
[[noreturn]] inline void invalid(std::string message, std::string param) {
    throw failure{{std::move(message), std::move(param), false}};
}

// A well-formed request asking what a chat target cannot do (400 unsupported_parameter).
[[noreturn]] inline void unsupported(std::string message, std::string param) {
    throw failure{{std::move(message), std::move(param), true}};
}

using json_fields::field;
using json_fields::string_field;
using json_fields::uint_field;

// Serialises without ever throwing on invalid UTF-8 (replaced by U+FFFD).
inline std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

inline std::string at(std::string_view where, std::size_t i) {
    return std::string(where) + "[" + std::to_string(i) + "]";
}

// The chat function name a namespaced Responses function goes by: namespace and name joined
// by "__" (Codex's MCP naming, "mcp__server__tool"); a namespace that already ends in "_"
// is joined as it is.
inline std::string flat_name(std::string_view ns, std::string_view name) {
    std::string out(ns);
    if (out.empty() || out.back() != '_') {
        out += "__";
    }
    out += name;
    return out;
}

// A chat function name -> the namespace and name of the Responses function it stands for,
// read from the request's namespace tools.
using namespace_map = std::map<std::string, std::pair<std::string, std::string>, std::less<>>;
namespace_map namespaces_of(const json& request);

// The request's function and namespace tools as chat tools (responses_tools.cpp).
json map_tools(const json& request);
// The request's tool_choice into out["tool_choice"], narrowing `tools` (allowed_tools).
void map_tool_choice(const json& request, json& tools, json& out);

// The parts of a Responses answer that the whole answer and the stream both build.
// The id part that item ids share: the response id without its "resp_" prefix.
std::string id_suffix(std::string_view response_id);
// An output item's id: prefix ("msg", "fc", "rs"), the response's suffix, its output index.
std::string item_id(std::string_view prefix, std::string_view suffix, std::size_t index);
// The response object without output, status and usage: id, model, created_at and the
// request's settings echoed as OpenAI does.
json envelope(const json& request, const std::string& model, const std::string& response_id,
              std::int64_t created);
// A Responses `usage` object: input_tokens (cached included) with input_tokens_details,
// output_tokens (reasoning included) with output_tokens_details, total_tokens.
json usage_json(const token_usage& u);
// "incomplete" for a finish reason that cut the answer (length, content_filter), else
// "completed"; the reason OpenAI gives in incomplete_details.
std::string_view status_of(std::string_view finish_reason);
json incomplete_details(std::string_view finish_reason);
// A function_call output item; the namespace split off the chat name when it names one.
json function_call_item(std::string id, std::string call_id, const std::string& chat_name,
                        std::string arguments, std::string_view status,
                        const namespace_map& namespaces);
// The text a reasoning-capable pivot carries beside the content (DeepSeek's
// reasoning_content, vLLM's reasoning), from a message or a delta.
std::string reasoning_text(const json& message_or_delta);

} // namespace michi::surface::responses::detail
