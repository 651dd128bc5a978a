#include "michi/core/json_scan.hpp"

#include <algorithm>

#include <array>
#include <cstring>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace michi::json_scan {

namespace detail {

std::size_t skip_string(std::string_view t, std::size_t i) noexcept {
    // memchr to each quote, then the backslashes right before it decide: an even run
    // (none included) leaves the quote unescaped. (A run never reaches back past `from`:
    // the character before `from` is a quote.)
    const char* const begin = t.data();
    const char* const end = begin + t.size();
    const char* from = begin + i + 1;
    while (from < end) {
        const auto* quote = static_cast<const char*>(std::memchr(from, '"', end - from));
        if (quote == nullptr) {
            break;
        }
        const char* run = quote;
        while (run > from && run[-1] == '\\') {
            --run;
        }
        if ((quote - run) % 2 == 0) {
            return static_cast<std::size_t>(quote - begin) + 1;
        }
        from = quote + 1;
    }
    return std::string_view::npos;
}

} // namespace detail

std::size_t find_text(std::string_view text, std::string_view needle, std::size_t from) noexcept {
    if (from > text.size()) {
        return std::string_view::npos;
    }
    const char* const s = text.data() + from;
    const std::size_t len = text.size() - from;
    const std::size_t n = needle.size();
#ifdef __SSE2__
    // Two bytes of the needle tested at 16 places at once: [1] and [n-2], which for a quoted
    // key ("usage", "content":") are letters and rarer in JSON than the quotes at its ends;
    // each place where both match is compared whole. Several times faster than memmem on
    // short texts, which sets up its tables on every call.
    if (n >= 4) {
        const std::size_t a = 1;
        const std::size_t b = n - 2;
        const __m128i first = _mm_set1_epi8(needle[a]);
        const __m128i second = _mm_set1_epi8(needle[b]);
        // Tests the 16 places from i; the first whole match among them, or npos.
        const auto block = [&](std::size_t i) {
            const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + a));
            const __m128i y = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + b));
            auto mask = static_cast<unsigned>(_mm_movemask_epi8(
                _mm_and_si128(_mm_cmpeq_epi8(x, first), _mm_cmpeq_epi8(y, second))));
            while (mask != 0) {
                const std::size_t at = i + static_cast<std::size_t>(__builtin_ctz(mask));
                if (std::memcmp(s + at, needle.data(), n) == 0) {
                    return from + at;
                }
                mask &= mask - 1;
            }
            return std::string_view::npos;
        };
        if (len >= n + 15) {
            std::size_t i = 0;
            for (; i + n + 15 <= len; i += 16) {
                if (const auto at = block(i); at != std::string_view::npos) {
                    return at;
                }
            }
            // The last places (fewer than 16) by one more block that ends at the text's end:
            // those it repeats held no match.
            return i + n <= len ? block(len - n - 15) : std::string_view::npos;
        }
        for (std::size_t i = 0; i + n <= len; ++i) { // a short text, place by place
            if (s[i + a] == needle[a] && std::memcmp(s + i, needle.data(), n) == 0) {
                return from + i;
            }
        }
        return std::string_view::npos;
    }
#endif
    const void* at = ::memmem(s, len, needle.data(), n);
    return at == nullptr ? std::string_view::npos
                         : static_cast<std::size_t>(static_cast<const char*>(at) - text.data());
}

std::size_t nesting_depth(std::string_view text, std::size_t limit) noexcept {
    std::size_t depth = 0;
    std::size_t deepest = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            deepest = std::max(deepest, ++depth);
            if (deepest > limit) {
                break;
            }
        } else if ((c == '}' || c == ']') && depth > 0) {
            --depth;
        }
    }
    return deepest;
}

std::size_t skip_value(std::string_view t, std::size_t i, std::size_t max_depth) noexcept {
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
        static constexpr auto structural = [] {
            std::array<bool, 256> table{};
            for (const unsigned char c : {'"', '{', '}', '[', ']'}) {
                table[c] = true;
            }
            return table;
        }();
        std::size_t depth = 0;
        while (i < t.size()) {
            const char c = t[i];
            if (!structural[static_cast<unsigned char>(c)]) {
                ++i;
                continue;
            }
            if (c == '"') {
                i = detail::skip_string(t, i);
                if (i == npos) {
                    return npos;
                }
                continue;
            }
            if (c == '{' || c == '[') {
                if (++depth > max_depth) {
                    return npos;
                }
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
