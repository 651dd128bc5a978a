#pragma once
// Text of URLs: the host and port of an authority (provider base URLs, store.redis,
// server.listen), and percent-decoding (admin paths and queries, a store.redis user info).

#include <optional>
#include <string>
#include <string_view>

namespace michi::wire {

// %XX sequences decoded (a malformed one is kept as it is); '+' becomes a space when
// plus_is_space (query strings), not in other parts of a URL.
std::string percent_decode(std::string_view s, bool plus_is_space);

// "host", "host:port", "[v6 address]" or "[v6 address]:port". The host may be empty; port
// is absent without a colon after the host (and empty after a bare colon). Unchecked: the
// port's digits and whether an unbracketed host holds a colon.
struct authority {
    std::string host;
    std::optional<std::string_view> port;
};
// The authority's parts, or nullopt with why when its brackets are wrong ("unclosed '[' in
// the host", "unexpected text after the host").
std::optional<authority> split_authority(std::string_view a, std::string& why);

} // namespace michi::wire
