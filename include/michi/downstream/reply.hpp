#pragma once
// Local answers both planes write: a JSON response with the call's keep-alive and extra
// fields, and an error in the client's API's shape.

#include "michi/core/api.hpp"
#include "michi/core/error.hpp"
#include "michi/downstream/call.hpp"
#include "michi/downstream/client_io.hpp"

#include <string>
#include <string_view>

namespace michi::downstream {

// A JSON response (write it with write_reply).
http::response<http::string_body> json_response(const call& c, unsigned status, std::string body);
// Writes a response with `fields` (serialised header lines) after its own; notes its status.
awaitable<error_code> write_reply(client_io& io, call& c, http::response<http::string_body>& res,
                                  std::string_view fields = {});
// Writes err as the API's error body with `fields`; notes status and error code.
awaitable<error_code> write_error(client_io& io, call& c, const gateway_error& err,
                                  dialect d = dialect::openai, std::string_view fields = {});

} // namespace michi::downstream
