// Usage readers for every provider's usage shape, and the OpenAI usage object written back.

#include "michi/providers/usage.hpp"

#include "michi/core/json_fields.hpp"
#include "michi/core/json_scan.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace michi::providers {
namespace {

using json = nlohmann::json;

// A member (nullptr when absent or null), and a token count: a non-negative integer (a whole
// float counts too), else nullopt.
const json* member(const json& j, const char* key) noexcept { return json_fields::field(j, key); }
std::optional<std::uint64_t> count(const json& j, const char* key) noexcept {
    return json_fields::uint_field(j, key);
}

std::uint64_t count_or_0(const json& j, const char* key) noexcept {
    return count(j, key).value_or(0);
}

std::uint64_t count_in(const json& j, const char* object, const char* key) noexcept {
    const json* o = member(j, object);
    return o != nullptr ? count_or_0(*o, key) : 0;
}

// Keeps the parts within their wholes, whatever a provider reported.
token_usage bounded(token_usage u) noexcept {
    u.reasoning = std::min(u.reasoning, u.output);
    u.input = u.total_input();
    return u;
}

// Whether a scalar ends at text[i] (as skip_value ends one).
bool ends_scalar(std::string_view text, std::size_t i) noexcept {
    return i == text.size() || text[i] == ',' || text[i] == '}' || text[i] == ']' ||
           text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r';
}

// Calls read(key, value, count) for the members of the object `text` (count: the value as
// a raw unsigned integer, else nullopt); false when it is not one. One pass: a count is
// read where it stands, other values skipped.
template <class Read>
bool raw_members(std::string_view text, Read&& read) {
    constexpr auto npos = std::string_view::npos;
    const std::size_t first = json_scan::detail::skip_ws(text, 0);
    if (first >= text.size() || text[first] != '{') {
        return false;
    }
    const std::size_t end =
        json_scan::walk_object(text, first, [&](std::string_view key, std::size_t begin) {
            std::uint64_t n = 0;
            const auto [stop, ec] =
                std::from_chars(text.data() + begin, text.data() + text.size(), n);
            const auto at = static_cast<std::size_t>(stop - text.data());
            if (ec == std::errc{} && ends_scalar(text, at)) {
                read(key, text.substr(begin, at - begin), std::optional(n));
                return at;
            }
            const std::size_t value_end = json_scan::skip_value(text, begin);
            if (value_end != npos) {
                read(key, text.substr(begin, value_end - begin), std::optional<std::uint64_t>());
            }
            return value_end;
        });
    return end != npos && json_scan::detail::skip_ws(text, end) == text.size();
}

} // namespace

std::optional<token_usage> read_openai_chat_usage(const json& usage) noexcept {
    if (!usage.is_object()) {
        return std::nullopt;
    }
    token_usage u;
    u.input = count_or_0(usage, "prompt_tokens");
    u.output = count_or_0(usage, "completion_tokens");
    const json* prompt = member(usage, "prompt_tokens_details");
    const auto cached = prompt != nullptr ? count(*prompt, "cached_tokens") : std::nullopt;
    u.cache_read = cached ? *cached : count_or_0(usage, "prompt_cache_hit_tokens");
    u.cache_write_5m = prompt != nullptr ? count_or_0(*prompt, "cache_write_tokens") : 0;
    u.reasoning = count_in(usage, "completion_tokens_details", "reasoning_tokens");
    return bounded(u);
}

std::optional<token_usage> read_openai_chat_usage(std::string_view usage) noexcept {
    token_usage u;
    std::optional<std::uint64_t> cached;
    std::uint64_t cache_hit = 0;
    const bool ok = raw_members(usage, [&](std::string_view key, std::string_view value,
                                           std::optional<std::uint64_t> n) {
        if (json_scan::key_is(key, "prompt_tokens")) {
            u.input = n.value_or(0);
        } else if (json_scan::key_is(key, "completion_tokens")) {
            u.output = n.value_or(0);
        } else if (json_scan::key_is(key, "prompt_cache_hit_tokens")) {
            cache_hit = n.value_or(0);
        } else if (json_scan::key_is(key, "prompt_tokens_details")) {
            raw_members(value,
                        [&](std::string_view k, std::string_view, std::optional<std::uint64_t> v) {
                            if (json_scan::key_is(k, "cached_tokens") && v) {
                                cached = v;
                            } else if (json_scan::key_is(k, "cache_write_tokens")) {
                                u.cache_write_5m = v.value_or(0);
                            }
                        });
        } else if (json_scan::key_is(key, "completion_tokens_details")) {
            raw_members(value,
                        [&](std::string_view k, std::string_view, std::optional<std::uint64_t> v) {
                            if (json_scan::key_is(k, "reasoning_tokens")) {
                                u.reasoning = v.value_or(0);
                            }
                        });
        }
    });
    if (!ok) {
        return std::nullopt;
    }
    u.cache_read = cached ? *cached : cache_hit;
    return bounded(u);
}

std::optional<token_usage> read_responses_usage(const json& usage) noexcept {
    if (!usage.is_object()) {
        return std::nullopt;
    }
    token_usage u;
    u.input = count_or_0(usage, "input_tokens");
    u.output = count_or_0(usage, "output_tokens");
    u.cache_read = count_in(usage, "input_tokens_details", "cached_tokens");
    u.reasoning = count_in(usage, "output_tokens_details", "reasoning_tokens");
    return bounded(u);
}

std::optional<token_usage> read_responses_usage(std::string_view usage) noexcept {
    token_usage u;
    const auto detail = [](std::string_view value, std::string_view name, std::uint64_t& out) {
        raw_members(value,
                    [&](std::string_view k, std::string_view, std::optional<std::uint64_t> v) {
                        if (k == name) {
                            out = v.value_or(0);
                        }
                    });
    };
    const bool ok = raw_members(
        usage, [&](std::string_view key, std::string_view value, std::optional<std::uint64_t> n) {
            if (key == "input_tokens") {
                u.input = n.value_or(0);
            } else if (key == "output_tokens") {
                u.output = n.value_or(0);
            } else if (key == "input_tokens_details") {
                detail(value, "cached_tokens", u.cache_read);
            } else if (key == "output_tokens_details") {
                detail(value, "reasoning_tokens", u.reasoning);
            }
        });
    if (!ok) {
        return std::nullopt;
    }
    return bounded(u);
}

std::optional<token_usage> read_gemini_usage(const json& meta) noexcept {
    if (!meta.is_object()) {
        return std::nullopt;
    }
    token_usage u;
    u.input = token_usage::sum(count_or_0(meta, "promptTokenCount"),
                               count_or_0(meta, "toolUsePromptTokenCount"));
    u.cache_read = count_or_0(meta, "cachedContentTokenCount");
    u.reasoning = count_or_0(meta, "thoughtsTokenCount");
    u.output = token_usage::sum(count_or_0(meta, "candidatesTokenCount"), u.reasoning);
    return bounded(u);
}

void anthropic_usage_tally::add(const json& usage) noexcept {
    if (!usage.is_object()) {
        return;
    }
    known_ = true;
    for (auto [key, slot] :
         {std::pair{"input_tokens", &input_}, std::pair{"output_tokens", &output_},
          std::pair{"cache_read_input_tokens", &cache_read_},
          std::pair{"cache_creation_input_tokens", &cache_creation_}}) {
        if (const auto v = count(usage, key)) {
            *slot = *v;
        }
    }
    if (const json* split = member(usage, "cache_creation")) {
        for (auto [key, slot] : {std::pair{"ephemeral_5m_input_tokens", &ephemeral_5m_},
                                 std::pair{"ephemeral_1h_input_tokens", &ephemeral_1h_}}) {
            if (const auto v = count(*split, key)) {
                *slot = *v;
            }
        }
    }
}

token_usage anthropic_usage_tally::tokens() const noexcept {
    token_usage u;
    u.cache_read = cache_read_;
    u.cache_write_1h = ephemeral_1h_;
    // Writes the split does not account for are 5 minute ones (the default lifetime).
    u.cache_write_5m =
        std::max(ephemeral_5m_, cache_creation_ > ephemeral_1h_ ? cache_creation_ - ephemeral_1h_
                                                                : std::uint64_t{0});
    u.input = token_usage::sum(input_, u.cached());
    u.output = output_;
    return u;
}

void anthropic_usage_tally::add(std::string_view usage) noexcept {
    anthropic_usage_tally next = *this;
    bool plain = true; // every count written as a plain integer (or null)
    const auto read = [&](std::string_view key, std::string_view value,
                          std::optional<std::uint64_t> n, const auto& slots) {
        for (const auto& [name, slot] : slots) {
            if (key == name) {
                if (n) {
                    *slot = *n;
                } else if (value != "null") {
                    plain = false;
                }
                return true;
            }
        }
        return false;
    };
    const bool object = raw_members(usage, [&](std::string_view key, std::string_view value,
                                               std::optional<std::uint64_t> n) {
        plain = plain && key.find('\\') == std::string_view::npos;
        if (read(key, value, n,
                 std::array{std::pair{"input_tokens", &next.input_},
                            std::pair{"output_tokens", &next.output_},
                            std::pair{"cache_read_input_tokens", &next.cache_read_},
                            std::pair{"cache_creation_input_tokens", &next.cache_creation_}}) ||
            key != "cache_creation" || value == "null") {
            return;
        }
        plain = plain && raw_members(value, [&](std::string_view k, std::string_view v,
                                                std::optional<std::uint64_t> m) {
                    plain = plain && k.find('\\') == std::string_view::npos;
                    read(k, v, m,
                         std::array{std::pair{"ephemeral_5m_input_tokens", &next.ephemeral_5m_},
                                    std::pair{"ephemeral_1h_input_tokens", &next.ephemeral_1h_}});
                });
    });
    if (object && !plain) {
        add(json::parse(usage, nullptr, false)); // the DOM reads what the scan does not
    } else if (object) {
        next.known_ = true;
        *this = next;
    }
}

anthropic_usage_tally anthropic_usage_tally::of(const token_usage& u) noexcept {
    anthropic_usage_tally t;
    t.known_ = true;
    t.input_ = u.uncached_input();
    t.output_ = u.output;
    t.cache_read_ = u.cache_read;
    t.cache_creation_ = u.cache_write();
    t.ephemeral_5m_ = u.cache_write_5m;
    t.ephemeral_1h_ = u.cache_write_1h;
    return t;
}

std::optional<token_usage> read_anthropic_usage(const json& usage) noexcept {
    if (!usage.is_object()) {
        return std::nullopt;
    }
    anthropic_usage_tally t;
    t.add(usage);
    return t.tokens();
}

std::optional<token_usage> read_anthropic_usage(std::string_view usage) noexcept {
    anthropic_usage_tally t;
    t.add(usage);
    return t.known() ? std::optional(t.tokens()) : std::nullopt;
}

json openai_chat_usage_json(const token_usage& u) {
    json prompt = {{"cached_tokens", u.cache_read}};
    if (u.cache_write() != 0) {
        prompt["cache_write_tokens"] = u.cache_write();
    }
    return {{"prompt_tokens", u.total_input()},
            {"completion_tokens", u.output},
            {"total_tokens", token_usage::sum(u.total_input(), u.output)},
            {"prompt_tokens_details", std::move(prompt)},
            {"completion_tokens_details", {{"reasoning_tokens", u.reasoning}}}};
}

json anthropic_usage_json(const token_usage& u) {
    json out = {{"input_tokens", u.uncached_input()},
                {"output_tokens", u.output},
                {"cache_creation_input_tokens", u.cache_write()},
                {"cache_read_input_tokens", u.cache_read}};
    if (u.cache_write_1h > 0) { // the split that prices 1 h writes apart
        out["cache_creation"] = {{"ephemeral_5m_input_tokens", u.cache_write_5m},
                                 {"ephemeral_1h_input_tokens", u.cache_write_1h}};
    }
    return out;
}

} // namespace michi::providers
