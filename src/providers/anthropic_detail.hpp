#pragma once
// Private helpers shared by the Anthropic translator's sources (not a public interface).

#include "michi/providers/translate.hpp"

#include "translate_util.hpp"

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

// The member `key` of an object, or nullptr (not an object, no such member, or null).
inline const json* field(const json& j, const char* key) {
    if (!j.is_object()) {
        return nullptr;
    }
    const auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
}

inline std::string string_field(const json& j, const char* key, std::string fallback = {}) {
    const json* v = field(j, key);
    return v != nullptr && v->is_string() ? v->get<std::string>() : std::move(fallback);
}

// A non-negative integer member (a whole float counts too), or nothing.
inline std::optional<std::uint64_t> uint_field(const json& j, const char* key) {
    const json* v = field(j, key);
    if (v == nullptr) {
        return std::nullopt;
    }
    if (v->is_number_unsigned()) {
        return v->get<std::uint64_t>();
    }
    if (v->is_number_integer()) {
        const auto n = v->get<std::int64_t>();
        return n < 0 ? std::nullopt : std::optional<std::uint64_t>(static_cast<std::uint64_t>(n));
    }
    if (v->is_number_float()) {
        const double d = v->get<double>();
        if (d >= 0 && d < 1.8e19 && d == static_cast<double>(static_cast<std::uint64_t>(d))) {
            return static_cast<std::uint64_t>(d);
        }
    }
    return std::nullopt;
}

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
