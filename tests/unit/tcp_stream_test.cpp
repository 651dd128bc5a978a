// The deadline stream: a read still pending at its deadline fails with beast's timeout and
// the socket is closed; a deadline moved later, or removed, before the wait wakes lets the
// read finish when the data comes. A peer's last bytes and its close, arriving together,
// are both read. And drained reads (upstream connections): the first read after a write
// waits for epoll instead of trying recv() first, and still misses no byte and no close.

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

// The stream writes `text` to the peer (through the loop, bounded).
void write_from_stream(pair& p, const std::string& text) {
    std::optional<error_code> done;
    net::async_write(*p.stream, net::buffer(text), [&](error_code ec, std::size_t) { done = ec; });
    p.ioc.restart();
    for (int i = 0; i < 100 && !done; ++i) {
        p.ioc.run_one_for(10s);
    }
    ASSERT_EQ(done, error_code{});
}

// A short read ("abc" of 64), then, with or without a write by the stream, a read started
// while "def" waits in the socket; "ghi" comes after it started and before the loop runs.
// Trying recv() first reads "def" at once; waiting for epoll reads both.
std::string read_after_a_short_read(pair& p, bool write_between) {
    {
        pending_read first(p); // waits for epoll: nothing has come yet
        send_and_wait(p, "abc");
        EXPECT_EQ(first.finish(), "abc"); // 3 of 64: the socket is empty now
    }
    if (write_between) {
        write_from_stream(p, "request");
    }
    send_and_wait(p, "def");
    pending_read second(p);
    send_and_wait(p, "ghi");
    return second.finish();
}

TEST(TcpStreamTest, AfterAWriteAnUpstreamStreamWaitsForEpollInsteadOfTryingFirst) {
#ifndef MICHI_DRAINED_READS
    GTEST_SKIP() << "drained reads are built only against Boost 1.81's epoll reactor";
#endif
    pair p;
    p.stream->wait_after_short_reads();
    EXPECT_EQ(read_after_a_short_read(p, true), "defghi");
}

// Without a write between them, the read after a short one cannot know that no close waits
// behind the bytes taken: it tries recv() first, as Asio's own reads do.
TEST(TcpStreamTest, WithoutAWriteAnUpstreamStreamTriesTheReadFirst) {
    pair p;
    p.stream->wait_after_short_reads();
    EXPECT_EQ(read_after_a_short_read(p, false), "def");
}

TEST(TcpStreamTest, AClientStreamTriesEachReadFirst) {
    pair p;
    EXPECT_EQ(read_after_a_short_read(p, true), "def");
}

// A read that filled its buffer may have left bytes behind: the next one must not wait for
// an event that came already, after a write or not.
TEST(TcpStreamTest, AfterAFullReadTheRestIsReadWithoutANewEvent) {
    pair p;
    p.stream->wait_after_short_reads();
    std::string got;
    {
        char four[4] = {};
        std::optional<std::size_t> n;
        p.stream->async_read_some(net::buffer(four), [&](error_code, std::size_t k) { n = k; });
        send_and_wait(p, "abcdefgh");
        p.ioc.restart();
        for (int i = 0; i < 100 && !n; ++i) {
            p.ioc.run_one_for(10s);
        }
        ASSERT_EQ(n, 4u);
        got.assign(four, *n);
    }
    write_from_stream(p, "request");
    pending_read rest(p);
    EXPECT_EQ(got + rest.finish(), "abcdefgh");
}

// The peer's last bytes and its close arrive together, before the read that takes them: the
// close has no readiness event of its own left, so a read that took the bytes and then waited
// for epoll would wait forever. The next read must find the end of the stream by itself, on
// a client stream and on an upstream one (a stream cut by the provider).
void bytes_and_close_together(bool drained) {
    pair p;
    if (drained) {
        p.stream->wait_after_short_reads();
    }
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

TEST(TcpStreamTest, BytesAndTheCloseArrivingTogetherAreBothRead) {
    bytes_and_close_together(false);
}

TEST(TcpStreamTest, BytesAndTheCloseArrivingTogetherAreBothReadOnAnUpstreamStream) {
    bytes_and_close_together(true);
}

// The one case the first read after a write does not try first: the peer closed right behind
// its last answer (bytes and close in one event) and the stream writes to it again, as to a
// kept-alive upstream connection. The closed peer answers with a reset, which ends the read.
TEST(TcpStreamTest, AWriteToAPeerThatClosedBehindItsAnswerEndsTheNextRead) {
    pair p;
    p.stream->wait_after_short_reads();
    {
        pending_read first(p);
        net::write(*p.peer, net::buffer(std::string("abc")));
        p.peer->close();
        pollfd pfd{p.stream->socket().native_handle(), POLLRDHUP, 0};
        ASSERT_EQ(::poll(&pfd, 1, 10000), 1) << "the peer's close never arrived";
        EXPECT_EQ(first.finish(), "abc");
    }
    write_from_stream(p, "request");
    pending_read next(p);
    const auto got = next.finish();
    ASSERT_TRUE(next.ec.has_value()) << "the read never ended";
    EXPECT_TRUE(*next.ec) << got;
}

TEST(TcpStreamTest, AnEarlierDeadlineReplacesALaterOne) {
    pair p;
    p.stream->expires_after(10s);
    p.stream->expires_after(50ms);
    EXPECT_EQ(read_one(p), beast::error::timeout);
}

} // namespace
} // namespace michi
