#pragma once
// What the admin API reads from its clients, checked: query strings, times, key and route
// fields. A problem is a 400 naming the field; nothing here throws on a client's value.

#include "michi/config/config.hpp"
#include "michi/core/error.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace michi::admin {

// The largest rpm or tpm a key may have (the stores keep them as signed 64-bit integers).
inline constexpr std::uint64_t max_limit_value = std::numeric_limits<std::int64_t>::max();
// The longest attempt_timeout_ms a route may have: one day.
inline constexpr std::uint64_t max_attempt_timeout_ms = 24ULL * 3600 * 1000;

// The query string of a request target, percent-decoded ("a=1&b" -> {a: 1, b: ""}).
std::map<std::string, std::string> query_of(std::string_view target);
// "2026-11-27", "2026-11-27T10:00:00Z" or unix seconds -> unix milliseconds.
std::optional<std::int64_t> parse_time_ms(const std::string& s);
// Unix milliseconds as "2026-11-27T10:00:00Z"; empty for none.
std::string iso_ms(std::int64_t ms);

// A 400 naming the first member of body that is not one of `allowed`; `refused` gives a
// clearer message for fields a client might expect to be taken (a secret, a class).
std::optional<gateway_error>
unknown_field(const nlohmann::json& body, std::initializer_list<std::string_view> allowed,
              std::initializer_list<std::pair<std::string_view, std::string_view>> refused = {});
// Reads the limit and model fields shared by POST and PATCH; a null value clears one.
std::optional<gateway_error> read_key_fields(const nlohmann::json& body, config::limits& lim,
                                             std::vector<std::string>& models);
// Reads `strategy` and `weights` of a PUT /admin/routes body into r (a route that is no
// longer weighted drops its weights); whether they fit its targets the config's validation
// says (route_problem).
std::optional<gateway_error> read_route_balance(const nlohmann::json& body,
                                                config::route_config& r);
// The 400 for a config with route `name` changed that does not validate: the route's own
// problem first, naming its field (weights, else targets).
gateway_error route_problem(const std::string& name, const std::vector<std::string>& problems);
// A route name from the path of PUT /admin/routes/{name}: short and printable.
bool valid_route_name(const std::string& name);
// A key id: 1-64 characters of [A-Za-z0-9._-].
bool valid_id(const std::string& id);
// The prefix of a new secret of a key class ("mk-dev-", "mk-app-", "mk-agt-").
std::string secret_prefix(config::key_class c);

} // namespace michi::admin
