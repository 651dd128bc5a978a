#pragma once
// Typed access to members of untrusted JSON that never throws: a member is there only when it
// is present and not null, and a wrongly typed one reads as absent.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace michi::json_fields {

// The member `key` of an object, or nullptr (not an object, no such member, or null).
inline const nlohmann::json* field(const nlohmann::json& j, const char* key) noexcept {
    if (!j.is_object()) {
        return nullptr;
    }
    const auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
}

// A string member, or fallback.
inline std::string string_field(const nlohmann::json& j, const char* key,
                                std::string fallback = {}) {
    const nlohmann::json* v = field(j, key);
    return v != nullptr && v->is_string() ? v->get<std::string>() : std::move(fallback);
}

// A non-negative integer member (a whole float counts too), or nothing.
inline std::optional<std::uint64_t> uint_field(const nlohmann::json& j, const char* key) noexcept {
    const nlohmann::json* v = field(j, key);
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

} // namespace michi::json_fields
