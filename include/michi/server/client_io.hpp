#pragma once
// The client side of one connection as the handlers see it, whether plain TCP or TLS:
// whole responses, or a chunked response written piece by piece.

#include "michi/core/net.hpp"

#include <functional>

namespace michi::server {

class client_io {
public:
    virtual ~client_io() = default;
    // extra_fields: more header lines, already serialised ("name: value\r\n" each, see
    // wire::append_field), written after the response's own fields.
    virtual awaitable<error_code> write_response(http::response<http::string_body>& res,
                                                 std::string_view extra_fields = {}) = 0;
    // Writes the head of a chunked response (res.chunked(true) is set here).
    virtual awaitable<error_code> write_head(http::response<http::empty_body>& res,
                                             std::string_view extra_fields = {}) = 0;
    virtual awaitable<error_code> write_chunk(std::string_view data) = 0;
    virtual awaitable<error_code> write_last_chunk() = 0;
    // Calls on_gone (once) if the client hangs up while watched. Only between writes
    // of a response whose request has been read completely.
    virtual void watch_disconnect(std::function<void()> on_gone) = 0;
    // Stops watching and waits until the watch has ended.
    virtual awaitable<void> unwatch() = 0;
};

} // namespace michi::server
