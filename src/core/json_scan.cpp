#include "michi/core/json_scan.hpp"

namespace michi::json_scan {

namespace detail {

std::size_t skip_string(std::string_view t, std::size_t i) noexcept {
    for (++i; i < t.size(); ++i) {
        if (t[i] == '\\') {
            ++i; // the escaped character (for \uXXXX the hex digits are plain characters)
        } else if (t[i] == '"') {
            return i + 1;
        }
    }
    return std::string_view::npos;
}

} // namespace detail

std::size_t skip_value(std::string_view t, std::size_t i) noexcept {
    constexpr auto npos = std::string_view::npos;
    if (i >= t.size()) {
        return npos;
    }
    const char first = t[i];
    if (first == '"') {
        return detail::skip_string(t, i);
    }
    if (first == '{' || first == '[') {
        // Nesting depth only: brackets inside strings are skipped with the strings.
        std::size_t depth = 0;
        while (i < t.size()) {
            const char c = t[i];
            if (c == '"') {
                i = detail::skip_string(t, i);
                if (i == npos) {
                    return npos;
                }
                continue;
            }
            if (c == '{' || c == '[') {
                ++depth;
            } else if (c == '}' || c == ']') {
                if (--depth == 0) {
                    return i + 1;
                }
            }
            ++i;
        }
        return npos;
    }
    // A number, true, false or null: up to the next delimiter.
    std::size_t j = i;
    while (j < t.size() && t[j] != ',' && t[j] != '}' && t[j] != ']' && !detail::is_ws(t[j])) {
        ++j;
    }
    return j == i ? npos : j;
}

std::optional<std::string_view> find_unique(std::string_view text, std::string_view key) {
    std::optional<std::string_view> found;
    bool ambiguous = false;
    const bool ok = for_each_member(text, [&](const member& m) {
        if (m.key_raw.find('\\') != std::string_view::npos) {
            ambiguous = true;
        } else if (m.key_raw == key) {
            ambiguous = ambiguous || found.has_value();
            found = text.substr(m.value_begin, m.value_end - m.value_begin);
        }
    });
    if (!ok || ambiguous) {
        return std::nullopt;
    }
    return found;
}

} // namespace michi::json_scan
