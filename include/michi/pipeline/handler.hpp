#pragma once
// Routes a complete request to its endpoint and writes the response.

#include "michi/app/worker.hpp"
#include "michi/core/error.hpp"
#include "michi/pipeline/request_context.hpp"
#include "michi/server/client_io.hpp"

namespace michi::pipeline {

awaitable<void> handle(worker& w, server::client_io& io, request_context& ctx);

// A JSON response; used for local answers and errors (write it with write_reply).
http::response<http::string_body> json_response(const request_context& ctx, unsigned status,
                                                std::string body);
// Writes a response to an API request with its guard fields (append_guard_fields).
awaitable<error_code> write_reply(server::client_io& io, const request_context& ctx,
                                  http::response<http::string_body>& res);
// Settles the request's reservation to its cost so far (once; later calls do nothing).
// Called as soon as the cost is known, before the response's last bytes go out, so a
// client that got its answer also sees the spend.
void settle(request_context& ctx);

// Appends x-request-id, x-ratelimit-* and retry-after as the context has them to out,
// serialised for client_io's extra_fields.
void append_guard_fields(std::string& out, const request_context& ctx);
// Writes an OpenAI-shaped error (Anthropic-shaped on /messages) and records it.
awaitable<void> reply_error(server::client_io& io, request_context& ctx,
                            const gateway_error& err);

} // namespace michi::pipeline
