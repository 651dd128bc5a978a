// The deadline stream: a read still pending at its deadline fails with beast's timeout and
// the socket is closed; a deadline moved later, or removed, before the wait wakes lets the
// read finish when the data comes. And a peer's last bytes and its close, arriving
// together, are both read.

#include "michi/core/tcp_stream.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <optional>
#include <string>

namespace michi {
namespace {

using namespace std::chrono_literals;

// A connected pair on the loopback: `stream` under test, `peer` a plain socket.
struct pair {
    net::io_context ioc{1};
    std::optional<tcp_stream> stream;
    std::optional<tcp_socket> peer;

    pair() {
        tcp_acceptor acceptor(ioc, {net::ip::make_address("127.0.0.1"), 0});
        tcp_socket client(ioc.get_executor());
        client.connect(acceptor.local_endpoint());
        peer.emplace(acceptor.accept());
        stream.emplace(std::move(client));
    }
};

// A read of up to 64 bytes, started now; finish() runs the loop handler by handler
// (bounded; the deadline's wait may stay pending) until the read is done.
struct pending_read {
    pair& p;
    char buf[64] = {};
    std::optional<error_code> ec;
    std::size_t n = 0;

    explicit pending_read(pair& to) : p(to) {
        p.stream->async_read_some(net::buffer(buf), [this](error_code e, std::size_t got) {
            ec = e;
            n = got;
        });
    }
    // What was read, the error's message, or "timeout" when the read never completed.
    std::string finish() {
        p.ioc.restart(); // (an earlier run may have stopped when it ran out of work)
        for (int i = 0; i < 100 && !ec; ++i) {
            if (p.ioc.run_one_for(10s) == 0) {
                break;
            }
        }
        if (!ec) {
            return "timeout";
        }
        return *ec ? ec->message() : std::string(buf, n);
    }
};

// Reads on the stream until the read completes; its error.
error_code read_one(pair& p) {
    pending_read r(p);
    r.finish();
    EXPECT_TRUE(r.ec.has_value()) << "the read never completed";
    return r.ec.value_or(net::error::would_block);
}

// The peer writes one byte after `delay` (on the same loop).
void write_later(pair& p, steady_timer& t, std::chrono::milliseconds delay) {
    t.expires_after(delay);
    t.async_wait([&p](error_code) {
        error_code ignored;
        net::write(*p.peer, net::buffer("x", 1), ignored);
    });
}

// Deadlines are set from the coarse clock: steady_clock's own time, at most a few timer
// ticks behind it, never ahead.
TEST(TcpStreamTest, TheCoarseClockIsSteadyClockAFewTicksBehind) {
    for (int i = 0; i < 100; ++i) {
        const auto before = steady_clock::now();
        const auto coarse = coarse_now();
        const auto after = steady_clock::now();
        EXPECT_LE(coarse, after);
        EXPECT_GT(coarse, before - 50ms);
    }
}

TEST(TcpStreamTest, AReadPendingAtTheDeadlineTimesOutAndClosesTheSocket) {
    pair p;
    p.stream->expires_after(50ms);
    EXPECT_EQ(read_one(p), beast::error::timeout);
    EXPECT_TRUE(p.stream->timed_out());
    EXPECT_FALSE(p.stream->socket().is_open());
}

TEST(TcpStreamTest, ADeadlineMovedLaterKeepsTheReadWaiting) {
    pair p;
    steady_timer later(p.ioc.get_executor());
    p.stream->expires_after(50ms); // the wait wakes here, finds a later deadline, sleeps again
    p.stream->expires_after(10s);
    write_later(p, later, 300ms);
    EXPECT_EQ(read_one(p), error_code{});
    EXPECT_FALSE(p.stream->timed_out());
}

TEST(TcpStreamTest, NoDeadlineKeepsTheReadWaiting) {
    pair p;
    steady_timer later(p.ioc.get_executor());
    p.stream->expires_after(50ms);
    p.stream->expires_never();
    write_later(p, later, 300ms);
    EXPECT_EQ(read_one(p), error_code{});
}

// The peer's last bytes and its close arrive together, before the read that takes them: the
// close has no readiness event of its own left, so a read that took the bytes and then waited
// for epoll would wait forever. The next read must find the end of the stream by itself.
TEST(TcpStreamTest, BytesAndTheCloseArrivingTogetherAreBothRead) {
    pair p;
    {
        pending_read first(p); // waiting for epoll: the event reports bytes and close at once
        net::write(*p.peer, net::buffer(std::string("abc")));
        p.peer->shutdown(tcp::socket::shutdown_send);
        pollfd pfd{p.stream->socket().native_handle(), POLLRDHUP, 0};
        ASSERT_EQ(::poll(&pfd, 1, 10000), 1) << "the peer's close never arrived";
        EXPECT_EQ(first.finish(), "abc");
    }
    pending_read last(p);
    EXPECT_EQ(last.finish(), error_code(net::error::eof).message());
}

TEST(TcpStreamTest, AnEarlierDeadlineReplacesALaterOne) {
    pair p;
    p.stream->expires_after(10s);
    p.stream->expires_after(50ms);
    EXPECT_EQ(read_one(p), beast::error::timeout);
}

} // namespace
} // namespace michi
