#include "michi/pipeline/body_scan.hpp"

#include "michi/core/json_parse.hpp"
#include "michi/core/json_scan.hpp"
#include "michi/routing/pricing.hpp"
#include "michi/providers/token_estimate.hpp"

#include <charconv>
#include <cstring>

namespace michi::pipeline {
namespace {

using json_scan::member;

// The text being scanned and what has been read of it.
struct scan {
    std::string_view text;
    body_facts facts;
    // json_parse's limit: no value the scan accepts nests deeper, so it never accepts a body
    // the full parse refuses (a deeper one is left to the full parse, which says why).
    std::size_t max_depth = json_parse::default_max_depth;

    // The nesting allowed to a value whose container is `level` levels deep (the body's
    // object is level 1).
    std::size_t below(std::size_t level) const { return max_depth - level; }
};

// The levels of the body the scan walks into: the body's object, messages, a message, its
// content, a content part. A limit below that is left to the full parse.
constexpr std::size_t body_level = 1;
constexpr std::size_t message_level = 3;
constexpr std::size_t content_level = 4;
constexpr std::size_t part_level = 5;

bool is_string(std::string_view v) { return !v.empty() && v.front() == '"'; }

// The raw text between a string token's quotes.
std::string_view string_body(std::string_view v) { return v.substr(1, v.size() - 2); }

// A key written with escapes could spell any name: the scan does not read such objects.
bool plain(std::string_view key_raw) { return key_raw.find('\\') == std::string_view::npos; }

// Marks `bit` seen; false when it was seen before (a duplicated key).
bool first_time(unsigned& seen, unsigned bit) {
    if ((seen & bit) != 0) {
        return false;
    }
    seen |= bit;
    return true;
}

// An unsigned JSON integer token ("0" or digits without a leading zero) that fits 64 bits,
// as nlohmann's is_number_unsigned() would see it.
std::optional<std::uint64_t> unsigned_token(std::string_view v) {
    if (v.empty() || (v.size() > 1 && v.front() == '0')) {
        return std::nullopt;
    }
    std::uint64_t n = 0;
    const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc{} || ptr != v.data() + v.size()) {
        return std::nullopt;
    }
    return n;
}

// Tokens of a string value, as estimate_text_tokens of its decoded text.
bool add_text_tokens(std::string_view token, std::uint64_t& tokens) {
    const auto size = decoded_size(string_body(token));
    if (!size) {
        return false;
    }
    tokens += providers::estimate_text_tokens(*size);
    return true;
}

constexpr auto npos = std::string_view::npos;

// The scans below walk the body once: each returns the index just past the value it read
// (the value starting at pos in s.text), or npos for "leave it to the full parse".

// One content part: {"type": ..., "text": ...} or an image. Mirrors token_estimate's
// content_tokens and the router's image check.
std::size_t scan_part(scan& s, std::size_t pos) {
    const std::string_view t = s.text;
    if (t[pos] != '{') {
        // not an object: counts nothing, as in the full path
        return json_scan::skip_value(t, pos, s.below(content_level));
    }
    enum : unsigned { text = 1, image_url = 2, source = 4, type = 8 };
    unsigned seen = 0;
    std::string_view text_value;
    const std::size_t end =
        json_scan::walk_object(t, pos, [&](std::string_view key, std::size_t begin) {
            const std::size_t value_end = json_scan::skip_value(t, begin, s.below(part_level));
            if (value_end == npos || !plain(key)) {
                return npos;
            }
            const std::string_view v = t.substr(begin, value_end - begin);
            unsigned bit = 0;
            if (key == "text") {
                bit = text;
                text_value = v;
            } else if (key == "image_url") {
                bit = image_url;
            } else if (key == "source") {
                bit = source;
            } else if (key == "type") {
                bit = type;
                if (!is_string(v)) {
                    return npos; // the router reads it as a string
                }
                s.facts.images = s.facts.images || v == "\"image_url\"";
            }
            if (bit != 0 && !first_time(seen, bit)) {
                return npos;
            }
            return value_end;
        });
    if (end == npos) {
        return npos;
    }
    if (is_string(text_value)) {
        return add_text_tokens(text_value, s.facts.prompt_tokens) ? end : npos;
    }
    if ((seen & (image_url | source)) != 0) {
        s.facts.prompt_tokens += providers::per_image;
    }
    return end;
}

// One message: an object with a string "role"; its "content" counted.
std::size_t scan_message(scan& s, std::size_t pos) {
    const std::string_view t = s.text;
    if (t[pos] != '{') {
        return npos; // the full path refuses it, with its index
    }
    enum : unsigned { role = 1, content = 2 };
    unsigned seen = 0;
    const std::size_t end =
        json_scan::walk_object(t, pos, [&](std::string_view key, std::size_t begin) {
            if (!plain(key)) {
                return npos;
            }
            if (key == "content") {
                if (!first_time(seen, content)) {
                    return npos;
                }
                if (t[begin] == '[') { // parts, counted as they are walked
                    return json_scan::walk_array(
                        t, begin, [&](std::size_t part) { return scan_part(s, part); });
                }
                const std::size_t value_end =
                    json_scan::skip_value(t, begin, s.below(message_level));
                if (value_end != npos && t[begin] == '"' &&
                    !add_text_tokens(t.substr(begin, value_end - begin), s.facts.prompt_tokens)) {
                    return npos;
                }
                return value_end; // null or another type: no tokens, as in the full path
            }
            const std::size_t value_end = json_scan::skip_value(t, begin, s.below(message_level));
            if (key == "role" && (!first_time(seen, role) || t[begin] != '"')) {
                return npos;
            }
            return value_end;
        });
    if (end == npos || (seen & role) == 0) {
        return npos;
    }
    s.facts.prompt_tokens += providers::per_message_overhead;
    return end;
}

std::size_t scan_messages(scan& s, std::size_t pos) {
    std::size_t count = 0;
    const std::size_t end = json_scan::walk_array(s.text, pos, [&](std::size_t message) {
        ++count;
        return scan_message(s, message);
    });
    return count > 0 ? end : npos;
}

bool scan_stream_options(std::string_view v, scan& s) {
    s.facts.has_stream_options = true;
    if (v == "null") {
        return true;
    }
    if (v.front() != '{') {
        return false;
    }
    bool seen = false;
    bool ok = true;
    const bool object = json_scan::for_each_member(v, [&](const member& m) {
        if (!plain(m.key_raw)) {
            ok = false;
        } else if (m.key_raw == "include_usage") {
            const std::string_view u = v.substr(m.value_begin, m.value_end - m.value_begin);
            ok = ok && !seen && (u == "true" || u == "false" || u == "null");
            seen = true;
            s.facts.wants_usage = u == "true";
        }
    });
    return object && ok;
}

} // namespace

std::optional<std::size_t> decoded_size(std::string_view raw) {
    std::size_t size = raw.size();
    const auto hex4 = [&](std::size_t at) -> std::optional<unsigned> {
        if (at + 4 > raw.size()) {
            return std::nullopt;
        }
        unsigned v = 0;
        const auto [ptr, ec] = std::from_chars(raw.data() + at, raw.data() + at + 4, v, 16);
        if (ec != std::errc{} || ptr != raw.data() + at + 4) {
            return std::nullopt;
        }
        return v;
    };
    std::size_t pos = 0;
    while (pos < raw.size()) {
        const void* found = std::memchr(raw.data() + pos, '\\', raw.size() - pos);
        if (found == nullptr) {
            break;
        }
        const std::size_t at =
            static_cast<std::size_t>(static_cast<const char*>(found) - raw.data());
        if (at + 1 >= raw.size()) {
            return std::nullopt;
        }
        const char e = raw[at + 1];
        if (e != 'u') {
            if (std::strchr("\"\\/bfnrt", e) == nullptr || e == '\0') {
                return std::nullopt;
            }
            size -= 1; // two bytes written, one meant
            pos = at + 2;
            continue;
        }
        const auto cp = hex4(at + 2);
        if (!cp) {
            return std::nullopt;
        }
        if (*cp >= 0xD800 && *cp <= 0xDBFF) { // a high surrogate: its low one must follow
            if (at + 12 > raw.size() || raw[at + 6] != '\\' || raw[at + 7] != 'u') {
                return std::nullopt;
            }
            const auto low = hex4(at + 8);
            if (!low || *low < 0xDC00 || *low > 0xDFFF) {
                return std::nullopt;
            }
            size -= 12 - 4; // one code point above U+FFFF: four bytes of UTF-8
            pos = at + 12;
            continue;
        }
        if (*cp >= 0xDC00 && *cp <= 0xDFFF) {
            return std::nullopt; // a lone low surrogate
        }
        const std::size_t utf8 = *cp < 0x80 ? 1 : *cp < 0x800 ? 2 : 3;
        size -= 6 - utf8;
        pos = at + 6;
    }
    return size;
}

std::optional<body_facts> scan_chat_body(std::string_view body) {
    scan s{body, {}, json_parse::max_depth()};
    if (s.max_depth < part_level) {
        return std::nullopt;
    }
    enum : unsigned {
        model = 1,
        messages = 2,
        stream = 4,
        stream_options = 8,
        tools = 16,
        max_tokens = 32,
        max_completion_tokens = 64,
    };
    unsigned seen = 0;
    std::optional<std::uint64_t> max_tokens_value;
    std::optional<std::uint64_t> max_completion_value;
    const std::size_t start = json_scan::detail::skip_ws(body, 0);
    const std::size_t end =
        json_scan::walk_object(body, start, [&](std::string_view k, std::size_t begin) {
            if (!plain(k)) {
                return npos;
            }
            if (k == "messages") {
                return first_time(seen, messages) ? scan_messages(s, begin) : npos;
            }
            const std::size_t value_end = json_scan::skip_value(body, begin, s.below(body_level));
            if (value_end == npos) {
                return npos;
            }
            const std::string_view v = body.substr(begin, value_end - begin);
            bool ok = true;
            if (k == "model") {
                ok = first_time(seen, model) && is_string(v) && v.size() > 2 &&
                     string_body(v).find('\\') == npos;
                if (ok) {
                    s.facts.model = std::string(string_body(v));
                    s.facts.model_begin = begin;
                    s.facts.model_end = value_end;
                }
            } else if (k == "stream") {
                ok = first_time(seen, stream) && (v == "true" || v == "false" || v == "null");
                s.facts.stream = v == "true";
            } else if (k == "stream_options") {
                ok = first_time(seen, stream_options) && scan_stream_options(v, s);
            } else if (k == "tools") {
                ok = first_time(seen, tools);
                if (v.front() == '[') {
                    const std::size_t next = json_scan::detail::skip_ws(v, 1);
                    s.facts.tools = next < v.size() && v[next] != ']';
                }
            } else if (k == "max_tokens") {
                ok = first_time(seen, max_tokens);
                max_tokens_value = unsigned_token(v);
            } else if (k == "max_completion_tokens") {
                ok = first_time(seen, max_completion_tokens);
                max_completion_value = unsigned_token(v);
            } else if (k == "system" || k == "input") {
                ok = false; // counted by the full path's estimate
            }
            return ok ? value_end : npos;
        });
    if (end == npos || json_scan::detail::skip_ws(body, end) != body.size() ||
        (seen & model) == 0 || (seen & messages) == 0) {
        return std::nullopt;
    }
    s.facts.max_output = max_completion_value ? *max_completion_value
                         : max_tokens_value   ? *max_tokens_value
                                              : routing::default_output_estimate;
    return std::move(s.facts);
}

} // namespace michi::pipeline
