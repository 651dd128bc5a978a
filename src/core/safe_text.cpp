#include "michi/core/safe_text.hpp"

#include <cstdint>
#include <cstring>

namespace michi::safe_text {
namespace {

bool continuation(unsigned char c) noexcept { return (c & 0xC0) == 0x80; }

constexpr char hex_digits[] = "0123456789abcdef";

void append_hex(std::string& out, unsigned char c) {
    out += "\\x";
    out += hex_digits[c >> 4];
    out += hex_digits[c & 0xF];
}

// Where a cut of text at `max` bytes ends: never inside a valid character.
std::size_t cut_point(std::string_view text, std::size_t max) noexcept {
    if (text.size() <= max) {
        return text.size();
    }
    std::size_t i = 0;
    while (i < max) {
        const std::size_t n = utf8_sequence(text, i);
        const std::size_t step = n == 0 ? 1 : n;
        if (i + step > max) {
            break;
        }
        i += step;
    }
    return i;
}

} // namespace

std::size_t utf8_sequence(std::string_view text, std::size_t i) noexcept {
    const auto at = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char c = at(i);
    if (c < 0x80) {
        return 1;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF; // the allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80; // no overlong forms
        hi = c == 0xED ? 0x9F : 0xBF; // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF; // nothing above U+10FFFF
    } else {
        return 0;
    }
    if (i + len > text.size()) {
        return 0;
    }
    if (at(i + 1) < lo || at(i + 1) > hi) {
        return 0;
    }
    for (std::size_t k = 2; k < len; ++k) {
        if (!continuation(at(i + k))) {
            return 0;
        }
    }
    return len;
}

bool is_plain(std::string_view v) noexcept {
    // Eight bytes at a time while they are printable ASCII other than '"' and '\\' (the
    // common case: ids, paths, model names), then byte by byte with UTF-8 checked. A word is
    // flagged only if one of its bytes is outside that set (Hacker's Delight's byte tests).
    constexpr std::uint64_t ones = 0x0101010101010101ULL;
    constexpr std::uint64_t highs = 0x8080808080808080ULL;
    std::size_t i = 0;
    for (; i + 8 <= v.size(); i += 8) {
        std::uint64_t x = 0;
        std::memcpy(&x, v.data() + i, 8);
        const std::uint64_t quote = x ^ (ones * '"');
        const std::uint64_t backslash = x ^ (ones * '\\');
        const std::uint64_t del = x ^ (ones * 0x7F);
        const std::uint64_t flagged = ((x - ones * 0x21) & ~x) | x | ((quote - ones) & ~quote) |
                                      ((backslash - ones) & ~backslash) | ((del - ones) & ~del);
        if ((flagged & highs) != 0) {
            break;
        }
    }
    for (; i < v.size();) {
        const auto c = static_cast<unsigned char>(v[i]);
        if (c < 0x80) {
            if (c <= 0x20 || c == 0x7F || c == '"' || c == '\\') {
                return false;
            }
            ++i;
            continue;
        }
        const std::size_t n = utf8_sequence(v, i);
        if (n == 0) {
            return false;
        }
        i += n;
    }
    return true;
}

void append_escaped(std::string& out, std::string_view v, std::size_t max) {
    const std::size_t end = cut_point(v, max);
    out.reserve(out.size() + end + 8);
    for (std::size_t i = 0; i < end;) {
        const auto c = static_cast<unsigned char>(v[i]);
        if (c >= 0x80) {
            const std::size_t n = utf8_sequence(v, i);
            if (n == 0) {
                append_hex(out, c);
                ++i;
            } else {
                out.append(v.data() + i, n);
                i += n;
            }
            continue;
        }
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20 || c == 0x7F) {
                append_hex(out, c);
            } else {
                out += static_cast<char>(c);
            }
        }
        ++i;
    }
    if (end < v.size()) {
        out += "...[cut ";
        out += std::to_string(v.size() - end);
        out += " bytes]";
    }
}

std::string escaped(std::string_view v, std::size_t max) {
    std::string out;
    append_escaped(out, v, max);
    return out;
}

std::string printable(std::string_view v, std::size_t max) {
    static constexpr std::string_view replacement = "\xEF\xBF\xBD"; // U+FFFD
    const std::size_t end = cut_point(v, max);
    std::string out;
    out.reserve(end + 3);
    for (std::size_t i = 0; i < end;) {
        const auto c = static_cast<unsigned char>(v[i]);
        const std::size_t n = utf8_sequence(v, i);
        if (n == 0 || c < 0x20 || c == 0x7F) {
            out += replacement;
            ++i;
            continue;
        }
        out.append(v.data() + i, n);
        i += n;
    }
    if (end < v.size()) {
        out += "...";
    }
    return out;
}

} // namespace michi::safe_text
