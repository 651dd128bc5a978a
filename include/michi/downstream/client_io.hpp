#pragma once
// The client side of one connection as the handlers see it, whether plain TCP or TLS:
// whole responses, or a chunked response written piece by piece.

#include "michi/core/http_wire.hpp"
#include "michi/core/net.hpp"
#include "michi/core/tcp_stream.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <tuple>

namespace michi::downstream {

class client_io {
public:
    virtual ~client_io() = default;
    // A whole response (never chunked: a chunked one goes through write_stream), its body
    // apart: the head is serialised before this returns (it may be a temporary), into a
    // string the connection keeps and reuses; the body's bytes must stay put until the
    // returned operation completes. extra_fields: more header lines, already serialised
    // ("name: value\r\n" each, see wire::append_field), written after the response's own
    // fields, copied into the head before this returns (a caller may reuse their string at
    // once: relay_whole does). The operation is awaited where it is made
    // (`auto [ec, n] = co_await io.write_response(...)`): it resumes the caller itself,
    // without a coroutine frame of its own.
    auto write_response(const http::response_header<>& head, std::string_view body,
                        std::string_view extra_fields) {
        wire::head(head_, head, extra_fields);
        if (head_only_) {
            body = {}; // a HEAD request's answer: the GET's head, never a body
        }
        const std::array<net::const_buffer, 2> bufs{net::buffer(head_), net::buffer(body)};
        lowest_.expires_after(write_timeout_);
        return michi::async_write(tls_, lowest_, bufs, nothrow_op);
    }
    // The same from a whole response, which must live until the operation completes.
    auto write_response(http::response<http::string_body>& res,
                        std::string_view extra_fields = {}) {
        return write_response(res.base(), res.body(), extra_fields);
    }
    // Writes, in one write, the parts of a chunked response given: its head when not empty
    // (serialised whole, its blank line included, with Transfer-Encoding: chunked among its
    // fields), data as one chunk when not empty, and the last chunk when last. One write
    // instead of three saves a stream that fits in one upstream read two system calls and two
    // suspensions. The head's bytes must stay put until the write is done.
    virtual awaitable<error_code> write_stream(std::string_view head, std::string_view data,
                                               bool last) = 0;
    // One chunk (nothing for empty data: an empty chunk would end the body).
    awaitable<error_code> write_chunk(std::string_view data) {
        return write_stream(std::string_view{}, data, false);
    }
    awaitable<error_code> write_last_chunk() {
        return write_stream(std::string_view{}, std::string_view{}, true);
    }
    // Calls on_gone (once) if the client hangs up while watched. Only between writes
    // of a response whose request has been read completely.
    virtual void watch_disconnect(std::function<void()> on_gone) = 0;
    // Stops watching: on_gone is not called after this returns.
    virtual void unwatch() noexcept = 0;
    // The request was read whole and its answer waits (a stream between events): the
    // connection's read buffer goes when it holds nothing, until the next request.
    virtual void release_read_buffer() noexcept {}

    // Room the connection keeps for a stream's head (stream_head_text writes it there): its
    // capacity stays for the connection's next stream instead of an allocation each.
    std::string& stream_head_room() noexcept { return stream_head_; }

    void set_write_timeout(std::chrono::milliseconds t) { write_timeout_ = t; }
    // Answers to the request being served go without their body (HEAD).
    void set_head_only(bool on) noexcept { head_only_ = on; }

protected:
    // lowest: the TCP stream under it all; tls: the TLS stream over it, or null.
    client_io(tcp_stream& lowest, tls_over_tcp* tls) : lowest_(lowest), tls_(tls) {}

    tcp_stream& lowest_;
    tls_over_tcp* tls_;
    std::chrono::milliseconds write_timeout_{60000};
    bool head_only_ = false;

private:
    std::string head_;        // the head of the whole response being written
    std::string stream_head_; // stream_head_room()
};

} // namespace michi::downstream
