#pragma once
// Request ids: the client's own when it is sane, else a fresh random one.

#include <string>
#include <string_view>

namespace michi {

// "req_" + 24 base62 characters.
std::string new_request_id();
// The same into `out`, replacing what it held (its storage is reused).
void new_request_id(std::string& out);
// A client-sent id is kept when it is 1..128 characters of [A-Za-z0-9._:-].
bool is_sane_request_id(std::string_view id) noexcept;

} // namespace michi
