#pragma once
// Helpers shared by the Gemini translator's sources (gemini_request.cpp, gemini_response.cpp, gemini_embeddings.cpp);
// not a public interface. Every accessor checks types first, so hostile JSON never throws.

#include "michi/providers/translate.hpp"

#include "translate_util.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

namespace michi::providers::gemini::detail {

using json = nlohmann::json;
using translate_util::dump;

inline std::string lower(std::string s) {
    for (char& c : s) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return s;
}

// {key: value}.
inline json single(const std::string& key, json value) {
    json j = json::object();
    j[key] = std::move(value);
    return j;
}

// Thrown by fail() while a request is translated; guarded() turns it into the result.
struct request_error {
    translate_error error;
};

[[noreturn]] inline void fail(std::string message, std::string param) {
    throw request_error{{std::move(message), std::move(param)}};
}

// Runs a request translation; nothing escapes it.
template <class F>
translated<upstream_request> guarded(F&& build) noexcept {
    try {
        return build();
    } catch (const request_error& e) {
        return e.error;
    } catch (const std::exception&) {
        return translate_error{"the request could not be translated for Gemini", ""};
    }
}

// The member key of j when j is an object that has it, else nullptr.
inline const json* find(const json& j, std::string_view key) {
    if (!j.is_object()) {
        return nullptr;
    }
    const auto it = j.find(key);
    return it == j.end() ? nullptr : &*it;
}

// The string member key of j, or "" when absent or not a string.
inline std::string string_at(const json& j, std::string_view key) {
    const json* v = find(j, key);
    return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

// The non-negative integer member key of j, or 0.
inline std::uint64_t count_at(const json& j, std::string_view key) {
    const json* v = find(j, key);
    if (v == nullptr || !v->is_number_integer()) {
        return 0;
    }
    return v->is_number_unsigned()
               ? v->get<std::uint64_t>()
               : static_cast<std::uint64_t>(std::max<std::int64_t>(0, v->get<std::int64_t>()));
}

// "gemini-2.0-flash" for both "gemini-2.0-flash" and "models/gemini-2.0-flash".
inline std::string model_id(const std::string& model) {
    constexpr std::string_view prefix = "models/";
    return model.starts_with(prefix) ? model.substr(prefix.size()) : model;
}

inline upstream_request make_request(std::string path, const std::string& api_key,
                                     const json& body) {
    upstream_request r;
    r.path = std::move(path);
    if (!api_key.empty()) {
        r.headers.emplace_back("x-goog-api-key", api_key);
    }
    r.headers.emplace_back("content-type", "application/json");
    r.body = dump(body);
    return r;
}

} // namespace michi::providers::gemini::detail
