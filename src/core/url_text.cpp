#include "michi/core/url_text.hpp"

#include <charconv>

namespace michi::wire {

std::string percent_decode(std::string_view s, bool plus_is_space) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+' && plus_is_space) {
            out.push_back(' ');
        } else if (s[i] == '%' && i + 2 < s.size()) {
            int v = 0;
            const auto r = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
            if (r.ec == std::errc{} && r.ptr == s.data() + i + 3) {
                out.push_back(static_cast<char>(v));
                i += 2;
            } else {
                out.push_back(s[i]);
            }
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

std::optional<authority> split_authority(std::string_view a, std::string& why) {
    authority out;
    if (a.starts_with('[')) {
        const auto close = a.find(']');
        if (close == std::string_view::npos) {
            why = "unclosed '[' in the host";
            return std::nullopt;
        }
        out.host = std::string(a.substr(1, close - 1));
        a.remove_prefix(close + 1);
        if (a.starts_with(':')) {
            out.port = a.substr(1);
        } else if (!a.empty()) {
            why = "unexpected text after the host";
            return std::nullopt;
        }
        return out;
    }
    const auto colon = a.rfind(':');
    out.host = std::string(a.substr(0, colon));
    if (colon != std::string_view::npos) {
        out.port = a.substr(colon + 1);
    }
    return out;
}

} // namespace michi::wire
