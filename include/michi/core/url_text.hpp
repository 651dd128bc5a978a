#pragma once
// Text of URLs: percent-decoding, for admin paths and queries and for the user info of a
// store.redis URL.

#include <string>
#include <string_view>

namespace michi::wire {

// %XX sequences decoded (a malformed one is kept as it is); '+' becomes a space when
// plus_is_space (query strings), not in other parts of a URL.
std::string percent_decode(std::string_view s, bool plus_is_space);

} // namespace michi::wire
