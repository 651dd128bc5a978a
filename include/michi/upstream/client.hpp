#pragma once
// One worker's upstream client: sends one attempt's request over a pooled connection (or a
// new one) and reads its answer's head; then the body, whole or as a stream's body source.
// A reused connection that fails before any response byte is retried once on a fresh one
// (the provider may have closed it while it sat in the pool). A connection whose answer
// did not end cleanly is never pooled.

#include "michi/stream/body_source.hpp"
#include "michi/upstream/connection.hpp"
#include "michi/upstream/pool.hpp"
#include "michi/upstream/response_parser.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace michi::upstream {

// How an attempt failed before its answer's head.
enum class failure_kind { none, connect, timeout, send, response };

// One upstream attempt whose response head has arrived (or which failed).
struct attempt {
    std::unique_ptr<connection> conn;
    std::unique_ptr<response_parser> parser;
    failure_kind failed = failure_kind::none;
    std::string outcome; // why, for the attempts list: "connect error (…)", "response timeout"

    explicit operator bool() const noexcept { return failed == failure_kind::none; }
    unsigned status() const noexcept { return parser ? parser->status() : 0; }
};

// Lets the caller of send() end an attempt while it waits for the answer's head (its client
// hung up): on_wait runs once, before the first wait, and abort() may then be called until
// send() returns.
struct head_wait {
    std::function<void(head_wait&)> on_wait;
    connection* conn = nullptr; // the attempt's connection while send() waits on it
    bool aborted = false;

    void abort() noexcept {
        aborted = true;
        if (conn != nullptr) {
            conn->close(); // ends the pending read
        }
    }
};

class client {
public:
    // A non-streamed body larger than this is refused (a completion is far smaller; this
    // only bounds memory against a broken upstream).
    static constexpr std::size_t max_whole_body = 64 * 1024 * 1024;

    client(executor ex, pool& idle, tcp_resolver& resolver)
        : ex_(ex), pool_(idle), resolver_(resolver) {}

    // Sends head and body to ep and waits for the answer's head, within head_timeout (and
    // connect_timeout for a new connection's connect and TLS handshake).
    // With wait, the wait for the head can be ended by wait->abort() (a failed attempt).
    awaitable<attempt> send(const endpoint& ep, std::string_view head, std::string_view body,
                            std::chrono::milliseconds connect_timeout,
                            std::chrono::milliseconds head_timeout, head_wait* wait = nullptr);

    // The whole body of an attempt's answer into out; an error when it broke off or was too
    // large. A body already whole in the connection's buffer is taken without a coroutine.
    awaitable<error_code> read_whole(attempt& a, std::string& out);
    // For an answer with a Content-Length that the connection's buffer already holds whole
    // (whole_in_buffer()): a view of the body where it lies, valid until the connection is
    // read again or released. An error when the parser could not take it all.
    static bool whole_in_buffer(attempt& a);
    static std::string_view borrow_whole(attempt& a, error_code& ec);

    // The answer's body as a stream's source; each wait for the upstream ends after
    // idle_timeout. The connection goes back to the pool when the stream ends cleanly.
    std::unique_ptr<stream::body_source>
    stream_body(attempt a, std::chrono::milliseconds idle_timeout, std::size_t keep_idle);

    // Returns the attempt's connection to the pool when its answer ended cleanly (keeping at
    // most keep_idle idle connections to its endpoint); closes it otherwise.
    void release(attempt& a, std::size_t keep_idle);

private:
    executor ex_;
    pool& pool_;
    tcp_resolver& resolver_;
};

} // namespace michi::upstream
