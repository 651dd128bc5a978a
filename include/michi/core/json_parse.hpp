#pragma once
// JSON read from outside (clients, upstreams, the admin API, Redis) parsed into
// nlohmann::json with a bound on its nesting, enforced while parsing: no exception, and a
// document nested deeper than the limit is refused before it is built. nlohmann's parser
// is iterative, but copying, dumping and comparing a json value recurse once per level, so
// a bounded depth is what keeps every later walk of the value within the stack.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace michi::json_parse {

// server.max_json_depth's default, and the range the config accepts.
inline constexpr std::size_t default_max_depth = 128;
inline constexpr std::size_t min_max_depth = 16;
inline constexpr std::size_t max_max_depth = 1024;

// The process-wide limit (server.max_json_depth of the config in force; set at start and on
// every reload), for parse sites that have no config at hand: the providers' translators
// and stores. Reading it is one relaxed atomic load.
std::size_t max_depth() noexcept;
void set_max_depth(std::size_t depth) noexcept;

// Why a parse failed.
enum class failure { none, syntax, too_deep };

// A parse's outcome: the value, or why there is none.
struct result {
    nlohmann::json value; // discarded (is_discarded()) when the parse failed
    failure why = failure::none;
    // The parser's own message for a syntax error; for too_deep, which limit was passed.
    std::string message;

    explicit operator bool() const noexcept { return why == failure::none; }
};

// Parses text as one JSON document whose arrays and objects nest at most max_depth levels
// (`[]` is one level, `{"a":[1]}` two, a scalar none). Never throws but std::bad_alloc.
result parse(std::string_view text, std::size_t max_depth);
inline result parse(std::string_view text) { return parse(text, json_parse::max_depth()); }

// The same, for callers that only need to know whether it worked: the value, or a
// discarded one.
nlohmann::json parse_value(std::string_view text, std::size_t max_depth);
inline nlohmann::json parse_value(std::string_view text) {
    return parse_value(text, json_parse::max_depth());
}

// "nested deeper than the limit of N levels": the text the errors name a refused document by.
std::string too_deep_message(std::size_t max_depth);

} // namespace michi::json_parse
