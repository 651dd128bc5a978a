// The deadline stream: a read still pending at its deadline fails with beast's timeout and
// the socket is closed; a deadline moved later, or removed, before the wait wakes lets the
// read finish when the data comes. And its reads after a short one: an upstream stream
// waits for epoll instead of trying recv() first, and still misses no byte.

#include "michi/core/tcp_stream.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/ioctl.h>

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

// Reads one byte on the stream; runs the loop (bounded) until the read completes.
error_code read_one(pair& p) {
    std::optional<error_code> result;
    char c = 0;
    p.stream->async_read_some(net::buffer(&c, 1),
                              [&](error_code ec, std::size_t) { result = ec; });
    // Handler by handler until the read is done (the deadline's wait may stay pending).
    for (int i = 0; i < 100 && !result; ++i) {
        if (p.ioc.run_one_for(10s) == 0) {
            break;
        }
    }
    EXPECT_TRUE(result.has_value()) << "the read never completed";
    return result.value_or(net::error::would_block);
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

// A read of up to 64 bytes, started now; finish() runs the loop (bounded) until it is done
// and returns what it read, or "timeout" when it never completed.
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
    std::string finish() {
        p.ioc.restart(); // (an earlier run may have stopped when it ran out of work)
        for (int i = 0; i < 100 && !ec; ++i) {
            if (p.ioc.run_one_for(2s) == 0) {
                break;
            }
        }
        if (!ec) {
            return "timeout";
        }
        return *ec ? ec->message() : std::string(buf, n);
    }
};

// Bytes waiting in the stream's socket.
int queued(pair& p) {
    int n = 0;
    EXPECT_EQ(::ioctl(p.stream->socket().native_handle(), FIONREAD, &n), 0);
    return n;
}

// The peer writes `text`; returns once it waits in the stream's socket (bounded).
void send_and_wait(pair& p, const std::string& text) {
    const int before = queued(p);
    net::write(*p.peer, net::buffer(text));
    const auto give_up = steady_clock::now() + 10s;
    while (queued(p) < before + static_cast<int>(text.size())) {
        ASSERT_LT(steady_clock::now(), give_up) << "the peer's bytes never arrived";
        pollfd pfd{p.stream->socket().native_handle(), POLLIN, 0};
        ::poll(&pfd, 1, 10);
    }
}

// The read after a short one, started while "def" waits in the socket; "ghi" comes after
// it started and before the loop runs. Trying recv() first (Asio's way) reads "def" at
// once; waiting for epoll reads both.
std::string read_after_a_short_read(pair& p) {
    {
        pending_read first(p); // waits for epoll: nothing has come yet
        send_and_wait(p, "abc");
        EXPECT_EQ(first.finish(), "abc"); // 3 of 64: the socket is empty now
    }
    send_and_wait(p, "def");
    pending_read second(p);
    send_and_wait(p, "ghi");
    return second.finish();
}

TEST(TcpStreamTest, AfterAShortReadAnUpstreamStreamWaitsForEpollInsteadOfTryingFirst) {
#ifndef MICHI_DRAINED_READS
    GTEST_SKIP() << "drained reads are built only against Boost 1.81's epoll reactor";
#endif
    pair p;
    p.stream->wait_after_short_reads();
    EXPECT_EQ(read_after_a_short_read(p), "defghi");
}

TEST(TcpStreamTest, AClientStreamStillTriesEachReadFirst) {
    pair p;
    EXPECT_EQ(read_after_a_short_read(p), "def");
}

// A read that filled its buffer may have left bytes behind: the next one must not wait for
// an event that came already.
TEST(TcpStreamTest, AfterAFullReadTheRestIsReadWithoutANewEvent) {
    pair p;
    p.stream->wait_after_short_reads();
    std::string got;
    {
        char four[4] = {};
        std::optional<std::size_t> n;
        p.stream->async_read_some(net::buffer(four),
                                  [&](error_code, std::size_t k) { n = k; });
        send_and_wait(p, "abcdefgh");
        p.ioc.restart();
        for (int i = 0; i < 100 && !n; ++i) {
            p.ioc.run_one_for(2s);
        }
        ASSERT_EQ(n, 4u);
        got.assign(four, *n);
    }
    pending_read rest(p);
    EXPECT_EQ(got + rest.finish(), "abcdefgh");
}

TEST(TcpStreamTest, AfterAShortReadTheEndOfStreamStillArrives) {
    pair p;
    p.stream->wait_after_short_reads();
    {
        pending_read first(p);
        send_and_wait(p, "abc");
        EXPECT_EQ(first.finish(), "abc");
    }
    pending_read last(p);
    p.peer->shutdown(tcp::socket::shutdown_send);
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
