#pragma once
// How the API plane answers: the contract's header fields (x-request-id, x-ratelimit-*,
// retry-after, x-michi-*), an error in the client's API's shape, a whole answer (a stream's
// head: stream_head.hpp). Each final answer settles the request first (settle.hpp), so its
// cost is known before its last bytes go out.

#include "michi/core/error.hpp"
#include "michi/downstream/client_io.hpp"
#include "michi/guard/ledger.hpp"
#include "michi/pipeline/request_context.hpp"

#include <string>
#include <string_view>

namespace michi::pipeline {

// x-request-id, and x-ratelimit-* and retry-after as the request has them.
void append_guard_fields(std::string& out, const request_context& ctx);
// The same and x-michi-model, x-michi-attempts, x-michi-route-reason and x-michi-cache: a
// served answer's.
void append_michi_fields(std::string& out, const request_context& ctx);

// Settles the request, then writes err in the client's API's shape.
awaitable<void> reply_error(downstream::client_io& io, request_context& ctx, guard::ledger& ledger,
                            const gateway_error& err);

// The head fields of a whole answer into `fields` (emptied first): its type, Retry-After
// (the upstream's, passed on unless the guards set one), Content-Length (none for a status
// without a body), Connection, and the served answer's fields. Notes the status; settles.
// Returns the body to write (empty for a status without one).
std::string_view prepare_whole(request_context& ctx, guard::ledger& ledger, std::string& fields,
                               unsigned status, std::string_view body,
                               std::string_view content_type, std::string_view retry_after);

// Settles the request, then writes a whole answer. Not a coroutine: the write's own
// operation is returned, to be awaited at once (`auto [ec, n] = co_await write_whole(…)`);
// `fields` may be reused as soon as this returns (the head is serialised by then); the
// body must stay put until the write is done.
inline auto write_whole(downstream::client_io& io, request_context& ctx, guard::ledger& ledger,
                        std::string& fields, unsigned status, std::string_view body,
                        std::string_view content_type, std::string_view retry_after) {
    body = prepare_whole(ctx, ledger, fields, status, body, content_type, retry_after);
    http::response_header<> head;
    head.version(11);
    head.result(status);
    return io.write_response(head, body, fields);
}

} // namespace michi::pipeline
