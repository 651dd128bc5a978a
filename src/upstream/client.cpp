#include "michi/upstream/client.hpp"

#include "michi/core/http_wire.hpp"

#include <array>

namespace michi::upstream {
namespace {

using std::chrono::milliseconds;

// Room a whole body of unknown length grows by per read.
constexpr std::size_t whole_read_room = 16 * 1024;

bool is_timeout(const error_code& ec) {
    return ec == beast::error::timeout || ec == net::error::timed_out;
}

std::string describe(const error_code& ec, std::string_view stage) {
    if (is_timeout(ec)) {
        return std::string(stage) + " timeout";
    }
    return std::string(stage) + " error (" + ec.message() + ")";
}

void fail(attempt& a, failure_kind kind, const error_code& ec, std::string_view stage) {
    a.failed = is_timeout(ec) ? failure_kind::timeout : kind;
    a.outcome = describe(ec, stage);
}

// Room at the end of `out` for the next piece of a whole body: the rest of an announced
// length, or a read's worth of a chunked one. Returns where the room starts.
std::size_t make_room(const attempt& a, std::string& out) {
    const std::size_t at = out.size();
    const auto announced = a.parser->content_length();
    const std::size_t want =
        announced && *announced > at ? static_cast<std::size_t>(*announced) - at : whole_read_room;
    out.resize(at + want);
    return at;
}

// Takes into `out` what the connection has already buffered of a whole body, straight into
// the string. True when that settled it: the body is complete, or failed with `ec`; false
// when the rest has to be read.
bool whole_from_buffer(attempt& a, std::string& out, error_code& ec) {
    if (out.empty()) {
        if (const auto len = a.parser->content_length()) {
            if (*len > client::max_whole_body) {
                ec = http::error::body_limit;
                return true;
            }
            out.reserve(static_cast<std::size_t>(*len));
        }
    }
    while (!a.parser->is_done()) {
        const std::size_t at = make_room(a, out);
        const std::size_t cap = out.size() - at;
        a.parser->lend(out.data() + at, cap);
        const bool settled = wire::put_buffered(*a.parser, a.conn->buffer(), ec);
        out.resize(at + (cap - a.parser->left()));
        if (ec == http::error::need_buffer) {
            ec = {};
        }
        if (ec) {
            return true;
        }
        if (out.size() > client::max_whole_body) {
            ec = http::error::body_limit;
            return true;
        }
        if (!settled) {
            return false;
        }
    }
    return true;
}

// Reads from the connection until the parser moves (a read may bring only part of a chunk's
// framing). `before_wait`, when given, runs before the first read from the socket. With
// `idle`, a connection that has nothing buffered holds no read buffer while it waits for
// the socket (a stream between events): it takes one back when bytes are there.
awaitable<error_code> read_until_progress(attempt& a, const std::function<void()>* before_wait,
                                          bool idle = false) {
    error_code ec;
    if (wire::put_buffered(*a.parser, a.conn->buffer(), ec)) {
        co_return ec;
    }
    if (before_wait != nullptr) {
        (*before_wait)();
    }
    auto& buffer = a.conn->read_buffer();
    if (idle && a.conn->plain()) {
        // Bytes already there are taken at once (as any read tries first); the wait for
        // more holds no buffer.
        error_code rec;
        std::size_t n = 0;
        bool got = a.conn->lowest().read_now(wire::read_room(buffer), rec, n);
        if (!got && a.conn->release_buffer()) {
            auto [wec] = co_await a.conn->lowest().async_wait_readable(nothrow_op);
            rec = wec;
            got = wec || a.conn->lowest().read_now(wire::read_room(a.conn->read_buffer()), rec, n);
        }
        if (got && (!wire::took_read(*a.parser, a.conn->read_buffer(), rec, n, ec) ||
                    wire::put_buffered(*a.parser, buffer, ec))) {
            co_return ec;
        }
    }
    for (;;) {
        auto [rec, n] = co_await a.conn->async_read_some(wire::read_room(buffer), nothrow_op);
        if (!wire::took_read(*a.parser, buffer, rec, n, ec) ||
            wire::put_buffered(*a.parser, buffer, ec)) {
            co_return ec;
        }
    }
}

// A stream's body read from its attempt's connection. Each piece is a view of the body's
// bytes where they lie in the connection's read buffer (the parser takes them without a
// copy, one contiguous run at a time): the buffer is not read into again before the next
// call, after the relay wrote the piece.
class upstream_body final : public stream::body_source {
public:
    upstream_body(client& owner, attempt a, milliseconds idle_timeout, std::size_t keep_idle)
        : owner_(owner), a_(std::move(a)), idle_timeout_(idle_timeout), keep_idle_(keep_idle) {}
    ~upstream_body() override {
        if (a_.conn) {
            a_.conn->close();
        }
    }

    awaitable<std::pair<error_code, std::string_view>>
    next(const std::function<void()>* before_wait) override {
        if (!a_.conn) {
            co_return std::pair{error_code(net::error::operation_aborted), std::string_view{}};
        }
        start_piece();
        co_return piece(co_await read_until_progress(a_, before_wait, true));
    }
    bool next_at_hand(std::pair<error_code, std::string_view>& out) override {
        if (!a_.conn) {
            return false; // (next() says why)
        }
        start_piece();
        error_code ec;
        if (!wire::put_buffered(*a_.parser, a_.conn->buffer(), ec)) {
            return false;
        }
        out = piece(ec);
        return true;
    }
    bool done() const noexcept override { return a_.parser->is_done(); }
    void abort() noexcept override {
        if (a_.conn) {
            a_.conn->close(); // aborts the pending read
        }
    }
    void release() noexcept override { owner_.release(a_, keep_idle_); }

private:
    // Before each piece, taken at hand or read: the upstream's silence counts from here (the
    // deadline of the request's head must not stay in force while the client takes a piece),
    // and the parser notes the piece's bytes where they lie.
    void start_piece() {
        a_.conn->expires_after(idle_timeout_);
        a_.parser->borrow();
    }
    // The piece the parser noted, with how its read ended.
    std::pair<error_code, std::string_view> piece(error_code ec) const {
        if (ec == http::error::need_buffer) {
            ec = {}; // the next run of body bytes is not contiguous with this one
        }
        return {ec, a_.parser->borrowed()};
    }

    client& owner_;
    attempt a_;
    milliseconds idle_timeout_;
    std::size_t keep_idle_;
};

} // namespace

awaitable<attempt> client::send(const endpoint& ep, std::string_view head, std::string_view body,
                                milliseconds connect_timeout, milliseconds head_timeout,
                                head_wait* wait) {
    const std::array<net::const_buffer, 2> bufs{net::buffer(head.data(), head.size()),
                                                net::buffer(body.data(), body.size())};
    attempt a;
    for (int tries = 0; tries < 2; ++tries) {
        a = attempt{};
        a.conn = pool_.take(ep.pool_key);
        if (!a.conn) {
            a.conn = std::make_unique<connection>(ex_, ep);
            const auto ec = co_await a.conn->open(resolver_, pool_.sessions(),
                                                  std::min(connect_timeout, head_timeout));
            if (ec) {
                fail(a, failure_kind::connect, ec, "connect");
                co_return a;
            }
        }
        a.conn->expires_after(head_timeout);
        // Written at once when the socket takes it (a request usually fits its send buffer):
        // one system call and no completion through the scheduler; the rest, if any, by an
        // asynchronous write (on TLS, encrypted whole first: the ciphertext left unsent).
        error_code wec;
        const std::size_t wn = a.conn->write_now(bufs, wec);
        if (!wec && (wn < head.size() + body.size() || a.conn->unsent())) {
            auto [ec, n] = co_await a.conn->async_write(after(bufs, wn), nothrow_op);
            wec = ec;
        }
        if (wec) {
            if (a.conn->reused && !is_timeout(wec)) {
                continue;
            }
            fail(a, failure_kind::send, wec, "send");
            co_return a;
        }
        a.parser = std::make_unique<response_parser>();
        a.parser->body_limit(boost::none);
        error_code rec;
        auto& buffer = a.conn->read_buffer();
        if (wait != nullptr) {
            wait->conn = a.conn.get();
            if (wait->on_wait) {
                auto on_wait = std::move(wait->on_wait); // once
                wait->on_wait = nullptr;
                on_wait(*wait);
            }
        }
        while (!(wait != nullptr && wait->aborted) &&
               wire::wants_more(*a.parser, buffer, true, rec)) {
            auto [ec, n] = co_await a.conn->async_read_some(wire::read_room(buffer), nothrow_op);
            if (!wire::took_read(*a.parser, buffer, ec, n, rec)) {
                break;
            }
        }
        if (wait != nullptr) {
            wait->conn = nullptr;
            if (wait->aborted) {
                fail(a, failure_kind::response, net::error::operation_aborted, "response");
                co_return a;
            }
        }
        if (rec) {
            if (a.conn->reused && !is_timeout(rec) && !a.parser->got_some()) {
                continue;
            }
            fail(a, failure_kind::response, rec, "response");
            co_return a;
        }
        co_return a;
    }
    co_return a;
}

awaitable<error_code> client::read_whole(attempt& a, std::string& out) {
    error_code ec;
    if (whole_from_buffer(a, out, ec)) {
        co_return ec;
    }
    while (!a.parser->is_done()) {
        const std::size_t at = make_room(a, out);
        a.parser->lend(out.data() + at, out.size() - at);
        const std::size_t cap = out.size() - at;
        ec = co_await read_until_progress(a, nullptr);
        out.resize(at + (cap - a.parser->left()));
        if (ec == http::error::need_buffer) {
            ec = {};
        }
        if (ec) {
            co_return ec;
        }
        if (out.size() > max_whole_body) {
            co_return http::error::body_limit;
        }
    }
    co_return error_code{};
}

bool client::whole_in_buffer(attempt& a) {
    const auto len = a.parser->content_length();
    return len && *len <= a.conn->buffer().size();
}

std::string_view client::borrow_whole(attempt& a, error_code& ec) {
    const auto len = *a.parser->content_length();
    auto& buffer = a.conn->buffer();
    a.parser->borrow();
    while (!a.parser->is_done() && !ec) {
        const std::size_t before = buffer.size();
        wire::put_buffered(*a.parser, buffer, ec);
        if (!ec && buffer.size() == before) {
            ec = http::error::partial_message; // (cannot be: all of it was there)
        }
    }
    const auto body = a.parser->borrowed();
    if (!ec && body.size() != len) {
        ec = http::error::partial_message;
    }
    return body;
}

std::unique_ptr<stream::body_source> client::stream_body(attempt a, milliseconds idle_timeout,
                                                         std::size_t keep_idle) {
    return std::make_unique<upstream_body>(*this, std::move(a), idle_timeout, keep_idle);
}

void client::release(attempt& a, std::size_t keep_idle) {
    if (a.conn && a.parser && a.parser->is_done() && a.parser->keep_alive() &&
        a.conn->buffer().size() == 0) {
        pool_.put(std::move(a.conn), keep_idle);
    } else if (a.conn) {
        a.conn->close();
    }
    a.conn.reset();
}

} // namespace michi::upstream
