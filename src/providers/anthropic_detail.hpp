#pragma once
// Private helpers shared by the Anthropic translator's sources (not a public interface).

#include "michi/providers/translate.hpp"

#include "translate_util.hpp"

#include "michi/core/json_fields.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace michi::providers::anthropic::detail {

using json = nlohmann::json;

// Thrown inside the translators and caught at their public boundary.
struct failure {
    translate_error error;
};

[[noreturn]] inline void fail(std::string message, std::string param) {
    throw failure{{std::move(message), std::move(param)}};
}

using json_fields::field;
using json_fields::string_field;
using json_fields::uint_field;

using translate_util::dump;

inline std::string at(std::string_view where, std::size_t i) {
    return std::string(where) + "[" + std::to_string(i) + "]";
}

// An Anthropic tool_use block as an OpenAI tool call (arguments "{}" without an input).
inline json openai_tool_call(const json& block) {
    const json* input = field(block, "input");
    return {{"id", string_field(block, "id")},
            {"type", "function"},
            {"function",
             {{"name", string_field(block, "name")},
              {"arguments", input != nullptr ? dump(*input) : std::string("{}")}}}};
}

} // namespace michi::providers::anthropic::detail
