#pragma once
// A structural scan of a JSON object's top level, without building a DOM: where each
// member's value starts and ends in the text. For the hot path, where a full parse
// would only be used to read one member (the upstream's "usage") or to rewrite one
// (the request's "model").
//
// The scan follows strings (with escapes) and nesting only; it does not validate
// scalars. Text it cannot follow makes it fail, and callers then fall back to a full
// parse. Nothing here recurses: nesting is counted in a loop (skip_value), and a walk
// goes one level down only through its caller's visit.

#include <cstddef>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>

namespace michi::json_scan {

// One top-level member: the key as written between its quotes (escapes not decoded) and
// the value's bytes [value_begin, value_end) in the scanned text.
struct member {
    std::string_view key_raw;
    std::size_t value_begin = 0;
    std::size_t value_end = 0;
};

// The first place of needle in text at or after from, or npos. A needle of 4 bytes or more
// is looked for by two of its inner bytes, 16 places at a time (SSE2), else by glibc's
// memmem: both beat string_view::find on JSON (that one stops at every '"' a needle starts
// with).
std::size_t find_text(std::string_view text, std::string_view needle,
                      std::size_t from = 0) noexcept;

// Where find_either found a needle: its place (npos: neither is there) and which one.
struct text_place {
    std::size_t at = std::string_view::npos;
    bool second = false; // the second needle (else the first)
};

// The first place at or after from where first or second is written (first's, where both
// are): one pass for both where find_text would take two, each needle looked for by its
// bytes [1] and last (for quoted keys, the key's first letter and the closing quote).
text_place find_either(std::string_view text, std::string_view first, std::string_view second,
                       std::size_t from = 0) noexcept;

// No bound on nesting (skip_value's default).
inline constexpr std::size_t unbounded = std::numeric_limits<std::size_t>::max();

// Where the value of a member ends: the index just past it, or npos when the text
// breaks off or is not JSON-shaped there, or when the value's arrays and objects nest
// deeper than max_depth levels (a scalar is none, `[[1]]` two).
std::size_t skip_value(std::string_view text, std::size_t pos,
                       std::size_t max_depth = unbounded) noexcept;

// The deepest nesting of arrays and objects in a JSON text, counted without parsing (strings
// skipped), stopping once past limit (then a value above limit).
std::size_t nesting_depth(std::string_view text, std::size_t limit = unbounded) noexcept;

// Calls visit(const member&) for each top-level member of the object `text`, in order.
// Returns false when text is not one JSON object (visit may have been called for the
// members before the point of failure).
template <class Visit>
bool for_each_member(std::string_view text, Visit&& visit);

// Calls visit(begin, end) with the bounds of each element of the array `text` (which must
// be exactly one array), in order. Returns false when text is not one JSON array.
template <class Visit>
bool for_each_element(std::string_view text, Visit&& visit);

// One pass over the object (array) that starts at text[pos], for callers that read a value
// as they go instead of skipping it first: visit(key_raw, value_begin) (visit(begin) for an
// array) returns the index just past the value, having read it or called skip_value, or
// npos to stop. A visit's position is always inside the text. Returns the index just past
// the object (array), or npos when the text is not JSON-shaped there or a visit returned
// npos. Nothing after the object is looked at.
template <class Visit>
std::size_t walk_object(std::string_view text, std::size_t pos, Visit&& visit);
template <class Visit>
std::size_t walk_array(std::string_view text, std::size_t pos, Visit&& visit);

// The value bytes of the member named `key`, when text is an object in which exactly
// one member has that name and no key is written with escapes (an escaped key could
// spell `key` too). nullopt otherwise: absent, duplicated, escaped keys, not an object.
std::optional<std::string_view> find_unique(std::string_view text, std::string_view key);

// find_unique for a member that comes at or near the end of its object, as a provider's
// "usage" does (last, or followed by a few short members): one pass (16 bytes at a time with
// SSE2) for where `"key"` is written and for a `\u` escape (which could spell it), then a
// scan of only the members from there to the object's close. find_unique itself decides
// when the text has `"key"` twice, a \u before it, or anything else the pass cannot vouch
// for. The answers differ only where the text before the member is not JSON-shaped, or has
// a key escaped otherwise than with \u: find_unique refuses those, this takes the member.
std::optional<std::string_view> find_unique_near_end(std::string_view text, std::string_view key);

// Whether a key as written is `name` (a literal): its size, then its bytes by an inlined
// comparison (string_view's == calls compare, out of line).
template <std::size_t N>
bool key_is(std::string_view key_raw, const char (&name)[N]) noexcept {
    return key_raw.size() == N - 1 && std::memcmp(key_raw.data(), name, N - 1) == 0;
}

// ---------------------------------------------------------------- implementation

namespace detail {
// (Anything above a space, the usual case, at one comparison.)
inline bool is_ws(char c) noexcept {
    return static_cast<unsigned char>(c) <= ' ' &&
           (c == ' ' || c == '\t' || c == '\n' || c == '\r');
}
inline std::size_t skip_ws(std::string_view t, std::size_t i) noexcept {
    while (i < t.size() && is_ws(t[i])) {
        ++i;
    }
    return i;
}
// t[i] is the opening quote; returns the index just past the closing one, or npos.
std::size_t skip_string(std::string_view t, std::size_t i) noexcept;
} // namespace detail

namespace detail {
// The list that opens with text[pos] == open: item(i) reads the item starting at i (always
// inside the text) and returns the index just past it, or npos; items are separated by ','
// and the list ends at close. Returns the index just past close, or npos.
template <class Item>
std::size_t walk_list(std::string_view text, std::size_t pos, char open, char close, Item&& item) {
    constexpr auto npos = std::string_view::npos;
    if (pos >= text.size() || text[pos] != open) {
        return npos;
    }
    std::size_t i = skip_ws(text, pos + 1);
    if (i < text.size() && text[i] == close) {
        return i + 1;
    }
    for (;;) {
        if (i >= text.size()) {
            return npos;
        }
        const std::size_t end = item(i);
        if (end == npos || end <= i || end > text.size()) {
            return npos;
        }
        i = skip_ws(text, end);
        if (i >= text.size()) {
            return npos;
        }
        if (text[i] == close) {
            return i + 1;
        }
        if (text[i] != ',') {
            return npos;
        }
        i = skip_ws(text, i + 1);
    }
}
} // namespace detail

template <class Visit>
std::size_t walk_object(std::string_view text, std::size_t pos, Visit&& visit) {
    constexpr auto npos = std::string_view::npos;
    return detail::walk_list(text, pos, '{', '}', [&](std::size_t i) {
        if (text[i] != '"') {
            return npos;
        }
        const std::size_t key_end = detail::skip_string(text, i);
        if (key_end == npos) {
            return npos;
        }
        const std::string_view key_raw = text.substr(i + 1, key_end - i - 2);
        const std::size_t colon = detail::skip_ws(text, key_end);
        if (colon >= text.size() || text[colon] != ':') {
            return npos;
        }
        const std::size_t value_begin = detail::skip_ws(text, colon + 1);
        if (value_begin >= text.size()) {
            return npos;
        }
        const std::size_t value_end = visit(key_raw, value_begin);
        return value_end != npos && value_end > value_begin ? value_end : npos;
    });
}

template <class Visit>
std::size_t walk_array(std::string_view text, std::size_t pos, Visit&& visit) {
    return detail::walk_list(text, pos, '[', ']', visit);
}

template <class Visit>
bool for_each_member(std::string_view text, Visit&& visit) {
    const std::size_t end =
        walk_object(text, detail::skip_ws(text, 0), [&](std::string_view key, std::size_t begin) {
            const std::size_t value_end = skip_value(text, begin);
            if (value_end != std::string_view::npos) {
                visit(static_cast<const member&>(member{key, begin, value_end}));
            }
            return value_end;
        });
    return end != std::string_view::npos && detail::skip_ws(text, end) == text.size();
}

template <class Visit>
bool for_each_element(std::string_view text, Visit&& visit) {
    const std::size_t end = walk_array(text, detail::skip_ws(text, 0), [&](std::size_t begin) {
        const std::size_t value_end = skip_value(text, begin);
        if (value_end != std::string_view::npos) {
            visit(begin, value_end);
        }
        return value_end;
    });
    return end != std::string_view::npos && detail::skip_ws(text, end) == text.size();
}

} // namespace michi::json_scan
