#include "michi/pipeline/passthrough_scan.hpp"

#include "michi/core/json_scan.hpp"
#include "michi/providers/token_estimate.hpp"
#include "michi/routing/pricing.hpp"

#include <nlohmann/json.hpp>

#include <charconv>

namespace michi::pipeline {
namespace {

constexpr auto npos = std::string_view::npos;

// A string this long made of base64 characters only is an image's (or a file's) data: it
// counts as one image, not as text.
constexpr std::size_t data_string_bytes = 16 * 1024;

bool is_base64_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '=' || c == '-' || c == '_';
}

// What a walk of one value found: text tokens, data strings, elements of its top array.
struct text_walk {
    std::uint64_t tokens = 0;
    bool images = false;
    bool image_word = false; // a string "image", "input_image" or "image_url" was seen
};

// Walks the value [begin, end) byte by byte (no recursion): the estimated tokens of its
// strings (a data string as an image), nesting bounded by max_depth; false when deeper.
bool walk_text(std::string_view v, std::size_t max_depth, text_walk& out) {
    std::size_t depth = 0;
    std::size_t top_elements = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
        const char c = v[i];
        if (c == '[' || c == '{') {
            if (++depth > max_depth) {
                return false;
            }
            if (depth == 2) {
                ++top_elements;
            }
        } else if (c == ']' || c == '}') {
            --depth;
        } else if (c == '"') {
            const std::size_t start = i + 1;
            std::size_t j = start;
            bool data = true;
            while (j < v.size() && v[j] != '"') {
                if (v[j] == '\\') {
                    ++j;
                    data = false;
                } else if (data && !is_base64_char(v[j])) {
                    data = false;
                }
                ++j;
            }
            if (j >= v.size()) {
                return false;
            }
            const std::size_t bytes = j - start;
            const auto word = v.substr(start, bytes);
            out.image_word =
                out.image_word || word == "image" || word == "input_image" || word == "image_url";
            if (data && bytes >= data_string_bytes) {
                out.tokens += providers::per_image;
                out.images = true;
            } else {
                out.tokens += providers::estimate_text_tokens(bytes);
            }
            i = j;
        }
    }
    out.tokens += top_elements * providers::per_message_overhead;
    return depth == 0;
}

std::optional<std::uint64_t> unsigned_token(std::string_view v) {
    std::uint64_t n = 0;
    const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc{} || ptr != v.data() + v.size()) {
        return std::nullopt;
    }
    return n;
}

bool mentions_image(std::string_view v) {
    for (const std::string_view marker :
         {std::string_view(R"("type":"image")"), std::string_view(R"("input_image")"),
          std::string_view(R"("image_url")")}) {
        if (json_scan::find_text(v, marker) != npos) {
            return true;
        }
    }
    return false;
}

} // namespace

std::optional<body_facts> scan_passthrough_body(std::string_view body, api_kind api,
                                                std::size_t max_depth) {
    const bool responses = api == api_kind::responses;
    const std::string_view prompt_a = responses ? "input" : "messages";
    const std::string_view prompt_b = responses ? "instructions" : "system";
    const std::string_view max_key = responses ? "max_output_tokens" : "max_tokens";
    body_facts f;
    unsigned seen = 0;
    bool ok = true;
    text_walk prompt;
    if (max_depth < 2) {
        return std::nullopt;
    }
    const std::size_t below = max_depth - 1; // the body's object is the first level
    const bool object = json_scan::for_each_member(body, [&](const json_scan::member& m) {
        if (!ok) {
            return;
        }
        const std::string_view key = m.key_raw;
        const std::string_view v = body.substr(m.value_begin, m.value_end - m.value_begin);
        auto once = [&](unsigned bit) {
            if ((seen & bit) != 0) {
                ok = false; // a duplicated key: the full parse decides
            }
            seen |= bit;
            return ok;
        };
        if (key.find('\\') != npos) {
            ok = false; // an escaped key could spell any name
        } else if (key == "model") {
            if (once(1) && v.size() > 2 && v.front() == '"') {
                // A name written with escapes ("claude\/x", as PHP writes slashes) is decoded.
                if (v.find('\\') == npos) {
                    f.model = std::string(v.substr(1, v.size() - 2));
                } else if (const auto name = nlohmann::json::parse(v, nullptr, false);
                           name.is_string()) {
                    f.model = name.get_ref<const std::string&>();
                } else {
                    ok = false;
                }
                f.model_begin = m.value_begin;
                f.model_end = m.value_end;
            } else {
                ok = false;
            }
        } else if (key == "stream") {
            ok = once(2) && (v == "true" || v == "false" || v == "null");
            f.stream = v == "true";
        } else if (key == max_key) {
            const auto n = unsigned_token(v);
            ok = once(4) && n.has_value();
            f.max_output = n.value_or(0);
        } else if (key == "tools") {
            ok = once(8) && !v.empty() && v.front() == '[';
            f.tools = ok && json_scan::detail::skip_ws(v, 1) < v.size() &&
                      v[json_scan::detail::skip_ws(v, 1)] != ']';
        } else if (key == prompt_a || key == prompt_b) {
            prompt.image_word = false;
            ok = once(key == prompt_a ? 16 : 32) && walk_text(v, below, prompt);
            // (The markers' search only where the walk saw one of their words.)
            f.images = f.images || (prompt.image_word && mentions_image(v));
        }
        if (ok && key != prompt_a && key != prompt_b && !v.empty() &&
            (v.front() == '{' || v.front() == '[')) {
            // Passed through unread, but never nested past the limit the full parse keeps.
            ok = json_scan::skip_value(v, 0, below) == v.size();
        }
    });
    if (!object || !ok || f.model.empty() || (seen & 16) == 0) {
        return std::nullopt;
    }
    if ((seen & 4) == 0) {
        f.max_output = routing::default_output_estimate;
    }
    f.prompt_tokens = prompt.tokens;
    f.images = f.images || prompt.images;
    return f;
}

} // namespace michi::pipeline
