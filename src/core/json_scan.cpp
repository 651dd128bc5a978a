#include "michi/core/json_scan.hpp"

#include <algorithm>

#include <array>
#include <cstring>

#if defined(__SSE2__)
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
#ifdef __SSE2__
    // The usual string (a key, a short value) has no backslash: its closing quote is the
    // first quote or backslash, looked for 16 bytes at a time (no call, as memchr's). At a
    // backslash, the walk below goes on from that block (no backslash before it).
    const __m128i quotes = _mm_set1_epi8('"');
    const __m128i backslashes = _mm_set1_epi8('\\');
    while (from + 16 <= end) {
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from));
        const auto m = static_cast<unsigned>(_mm_movemask_epi8(
            _mm_or_si128(_mm_cmpeq_epi8(x, quotes), _mm_cmpeq_epi8(x, backslashes))));
        if (m == 0) {
            from += 16;
            continue;
        }
        const char* const hit = from + __builtin_ctz(m);
        if (*hit == '"') {
            return static_cast<std::size_t>(hit - begin) + 1;
        }
        break;
    }
#endif
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

namespace {

#ifdef __SSE2__
__m128i load16(const char* p) noexcept {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

// Visits the places [from, stop) 16 at a time (stop - from >= 16): mask(j) says, one bit a
// place, which of [j, j + 16) are worth a look; each is given to at(place), in order, which
// returns true to stop there. The last places (fewer than 16) by one more block that ends at
// stop, with those already looked at masked off. Returns whether at() stopped the walk.
template <class Mask, class At>
inline bool for_each_candidate(std::size_t from, std::size_t stop, Mask&& mask, At&& at) {
    const auto visit = [&](std::size_t j, unsigned bits) {
        for (; bits != 0; bits &= bits - 1) {
            if (at(j + static_cast<std::size_t>(__builtin_ctz(bits)))) {
                return true;
            }
        }
        return false;
    };
    std::size_t i = from;
    for (; i + 16 <= stop; i += 16) {
        if (visit(i, mask(i))) {
            return true;
        }
    }
    if (i < stop) {
        const std::size_t j = stop - 16;
        return visit(j, mask(j) & ~((1u << (16 - (stop - i))) - 1));
    }
    return false;
}

// The places (bits) of [j, j + 16) where s[place + a] == ca and s[place + b] == cb.
inline __m128i pair_at(const char* s, std::size_t j, std::size_t a, __m128i ca, std::size_t b,
                       __m128i cb) noexcept {
    return _mm_and_si128(_mm_cmpeq_epi8(load16(s + j + a), ca),
                         _mm_cmpeq_epi8(load16(s + j + b), cb));
}
#endif

} // namespace

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
        // (Its own loop rather than for_each_candidate's: through that one a call took ~15
        // instructions more on a stream's events, ~200 bytes each.)
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

text_place find_either(std::string_view text, std::string_view first, std::string_view second,
                       std::size_t from) noexcept {
    if (from > text.size()) {
        return {};
    }
#ifdef __SSE2__
    const char* const s = text.data() + from;
    const std::size_t len = text.size() - from;
    const std::size_t n1 = first.size();
    const std::size_t n2 = second.size();
    const std::size_t shortest = std::min(n1, n2);
    // As find_text, with each needle's own two bytes, [1] and its last: one pass for both.
    // (For quoted keys, `"content":"` and `"usage"`, the last byte is a quote whose distance
    // from the key's first letter tells keys with that letter apart.)
    if (shortest >= 4 && len >= std::max(n1, n2) + 15) {
        const std::size_t a1 = 1;
        const std::size_t b1 = n1 - 1;
        const std::size_t a2 = 1;
        const std::size_t b2 = n2 - 1;
        const __m128i c1a = _mm_set1_epi8(first[a1]);
        const __m128i c1b = _mm_set1_epi8(first[b1]);
        const __m128i c2a = _mm_set1_epi8(second[a2]);
        const __m128i c2b = _mm_set1_epi8(second[b2]);
        // Places from which the longer needle would run past the end are found by a last
        // find_text of the shorter one (the blocks cover the places the longer one fits).
        const std::size_t stop = len - std::max(n1, n2) + 1;
        text_place found;
        for_each_candidate(
            0, stop,
            [&](std::size_t j) {
                return static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(
                    pair_at(s, j, a1, c1a, b1, c1b), pair_at(s, j, a2, c2a, b2, c2b))));
            },
            [&](std::size_t at) {
                if (std::memcmp(s + at, first.data(), n1) == 0) {
                    found = {from + at, false};
                    return true;
                }
                if (std::memcmp(s + at, second.data(), n2) == 0) {
                    found = {from + at, true};
                    return true;
                }
                return false;
            });
        if (found.at != std::string_view::npos || n1 == n2) {
            return found;
        }
        const bool second_shorter = n2 < n1;
        const std::size_t at = find_text(text, second_shorter ? second : first, from + stop);
        return at == std::string_view::npos ? text_place{} : text_place{at, second_shorter};
    }
#endif
    // (A place where both match is first's.)
    const std::size_t at1 = find_text(text, first, from);
    const std::size_t at2 = find_text(text, second, from);
    if (at2 < at1) {
        return {at2, true};
    }
    return at1 == std::string_view::npos ? text_place{} : text_place{at1, false};
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
    // Without a backslash in the whole text, no key has one: one look instead of one a key.
    const bool escapes = !text.empty() && std::memchr(text.data(), '\\', text.size()) != nullptr;
    const bool ok = for_each_member(text, [&](const member& m) {
        if (escapes && m.key_raw.find('\\') != std::string_view::npos) {
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

namespace {

// Where `"key"` (with its quotes) is written in text[from, to): the first place, and whether
// there is a second; and the first `\u` there (an escape that could spell a key), or npos.
struct key_places {
    std::size_t first = std::string_view::npos;
    bool twice = false;
    std::size_t escape = std::string_view::npos;
};

key_places find_key_places(std::string_view t, std::size_t from, std::size_t to,
                           std::string_view key) noexcept {
    key_places found;
    const std::size_t span = key.size() + 1; // from the opening quote to the closing one
    const char* const d = t.data();
    const auto at = [&](std::size_t i) { // one starting place
        if (d[i] == '"' && i + span < to && d[i + 1] == key[0] && d[i + span] == '"' &&
            std::memcmp(d + i + 1, key.data(), key.size()) == 0) {
            found.twice = found.first != std::string_view::npos;
            if (!found.twice) {
                found.first = i;
            }
        } else if (d[i] == '\\' && i + 1 < to && d[i + 1] == 'u' &&
                   found.escape == std::string_view::npos) {
            found.escape = i;
        }
    };
    std::size_t i = from;
#if defined(__SSE2__)
    // 16 starting places at a time: a quote there, the key's first byte next and a quote
    // where the key would end; or a backslash and a 'u'. The places from to - span on can
    // hold neither a key nor an escape before one: they are not looked at.
    if (to >= from + span + 16) {
        const __m128i quote = _mm_set1_epi8('"');
        const __m128i lead = _mm_set1_epi8(key[0]);
        const __m128i backslash = _mm_set1_epi8('\\');
        const __m128i u = _mm_set1_epi8('u');
        for_each_candidate(
            i, to - span,
            [&](std::size_t j) {
                const __m128i here = load16(d + j);
                const __m128i next = load16(d + j + 1);
                const __m128i named =
                    _mm_and_si128(_mm_cmpeq_epi8(here, quote), _mm_cmpeq_epi8(next, lead));
                return static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(
                    _mm_and_si128(named, _mm_cmpeq_epi8(load16(d + j + span), quote)),
                    _mm_and_si128(_mm_cmpeq_epi8(here, backslash), _mm_cmpeq_epi8(next, u)))));
            },
            [&](std::size_t place) {
                at(place);
                return found.twice;
            });
        return found;
    }
#endif
    for (; i < to && !found.twice; ++i) {
        at(i);
    }
    return found;
}

} // namespace

std::optional<std::string_view> find_unique_near_end(std::string_view text, std::string_view key) {
    constexpr auto npos = std::string_view::npos;
    std::size_t end = text.size();
    while (end > 0 && detail::is_ws(text[end - 1])) {
        --end;
    }
    const std::size_t open = detail::skip_ws(text, 0);
    if (key.empty() || end == 0 || text[end - 1] != '}' || open >= end || text[open] != '{') {
        return find_unique(text, key);
    }
    const std::size_t close = end - 1; // the object's closing brace
    // A key written as `key` is written `"key"` somewhere: none, and no member has the name.
    const key_places places = find_key_places(text, open + 1, close, key);
    if (places.first == npos) {
        return std::nullopt; // (an escaped spelling makes find_unique refuse too)
    }
    if (places.twice || places.escape < places.first) {
        return find_unique(text, key); // (which decides a duplicate or an escape exactly)
    }
    const std::size_t quote = places.first;
    // A member starts there only after '{' or ',' (a quote after anything else closes a
    // string or is escaped).
    std::size_t before = quote;
    while (before > open && detail::is_ws(text[before - 1])) {
        --before;
    }
    if (before == 0 || (text[before - 1] != ',' && text[before - 1] != '{') ||
        (text[before - 1] == '{' && before - 1 != open)) {
        return find_unique(text, key);
    }
    // That member and those after it, to the object's close: then it is a top-level one
    // (nested deeper, its object would close before the text's last brace).
    std::optional<std::string_view> found;
    bool clean = true; // no later key named key or written with escapes
    std::size_t i = quote;
    for (;;) {
        if (i >= close || text[i] != '"') {
            return find_unique(text, key);
        }
        const std::size_t key_end = detail::skip_string(text, i);
        if (key_end == npos || key_end > close) {
            return find_unique(text, key);
        }
        const std::string_view k = text.substr(i + 1, key_end - i - 2);
        const std::size_t colon = detail::skip_ws(text, key_end);
        if (colon >= close || text[colon] != ':') {
            return find_unique(text, key);
        }
        const std::size_t value = detail::skip_ws(text, colon + 1);
        const std::size_t value_end = skip_value(text, value);
        if (value_end == npos || value_end > close) {
            return find_unique(text, key);
        }
        if (!found) {
            found = text.substr(value, value_end - value);
        } else if (k == key || k.find('\\') != std::string_view::npos) {
            clean = false;
        }
        i = detail::skip_ws(text, value_end);
        if (i == close) {
            break;
        }
        if (text[i] != ',') {
            return find_unique(text, key);
        }
        i = detail::skip_ws(text, i + 1);
    }
    if (!clean) {
        return find_unique(text, key); // (which decides a duplicate or an escape exactly)
    }
    return found;
}

} // namespace michi::json_scan
