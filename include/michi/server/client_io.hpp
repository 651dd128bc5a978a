#pragma once
// The client side of one connection as the handlers see it, whether plain TCP or TLS:
// whole responses, or a chunked response written piece by piece.

#include "michi/core/net.hpp"

#include <cstddef>
#include <functional>
#include <tuple>

namespace michi::server {

class client_io {
public:
    virtual ~client_io() = default;
    // extra_fields: more header lines, already serialised ("name: value\r\n" each, see
    // wire::append_field), written after the response's own fields, copied into the head
    // before this returns (a caller may reuse their string at once: relay_whole does). The
    // response must live until the returned operation completes (the caller awaits it at
    // once).
    awaitable<std::tuple<error_code, std::size_t>>
    write_response(http::response<http::string_body>& res, std::string_view extra_fields = {}) {
        return write_response(res.base(), res.body(), extra_fields);
    }
    // The same with the body apart: the head is serialised before this returns (it may be
    // a temporary), the body's bytes must stay put until the returned operation completes.
    virtual awaitable<std::tuple<error_code, std::size_t>>
    write_response(const http::response_header<>& head, std::string_view body,
                   std::string_view extra_fields) = 0;
    // Writes, in one write, the parts of a chunked response given: its head when head is not
    // null (head->chunked(true) is set here), data as one chunk when not empty, and the last
    // chunk when last. One write instead of three saves a stream that fits in one upstream
    // read two system calls and two suspensions.
    virtual awaitable<error_code> write_stream(http::response<http::empty_body>* head,
                                               std::string_view extra_fields,
                                               std::string_view data, bool last) = 0;
    // The head of a chunked response.
    awaitable<error_code> write_head(http::response<http::empty_body>& res,
                                     std::string_view extra_fields = {}) {
        return write_stream(&res, extra_fields, {}, false);
    }
    // One chunk (nothing for empty data: an empty chunk would end the body).
    awaitable<error_code> write_chunk(std::string_view data) {
        return write_stream(nullptr, {}, data, false);
    }
    awaitable<error_code> write_last_chunk() { return write_stream(nullptr, {}, {}, true); }
    // Calls on_gone (once) if the client hangs up while watched. Only between writes
    // of a response whose request has been read completely.
    virtual void watch_disconnect(std::function<void()> on_gone) = 0;
    // Stops watching and waits until the watch has ended.
    virtual awaitable<void> unwatch() = 0;
};

} // namespace michi::server
