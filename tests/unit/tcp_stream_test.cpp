// The deadline stream: a read still pending at its deadline fails with beast's timeout and
// the socket is closed; a deadline moved later, or removed, before the wait wakes lets the
// read finish when the data comes. A peer's last bytes and its close, arriving together,
// are both read. And drained reads (upstream connections): the first read after a write
// waits for epoll instead of trying recv() first, and still misses no byte and no close.
// And write_now: what the socket takes, written without the loop, the rest left to an
// asynchronous write.

#include "michi/core/tcp_stream.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/ioctl.h>

#include <sys/socket.h>
#include <sys/time.h>

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

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

// The same without the loop: what the socket takes at once.
void write_now_from_stream(pair& p, const std::string& text) {
    error_code ec;
    const std::array<net::const_buffer, 1> bufs{net::buffer(text)};
    ASSERT_EQ(p.stream->write_now(bufs, ec), text.size());
    ASSERT_EQ(ec, error_code{});
}

enum class write_kind { none, async, now };

// A short read ("abc" of 64), then, with or without a write by the stream, a read started
// while "def" waits in the socket; "ghi" comes after it started and before the loop runs.
// Trying recv() first reads "def" at once; waiting for epoll reads both.
std::string read_after_a_short_read(pair& p, write_kind write_between) {
    {
        pending_read first(p); // waits for epoll: nothing has come yet
        send_and_wait(p, "abc");
        EXPECT_EQ(first.finish(), "abc"); // 3 of 64: the socket is empty now
    }
    if (write_between == write_kind::async) {
        write_from_stream(p, "request");
    } else if (write_between == write_kind::now) {
        write_now_from_stream(p, "request");
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
    EXPECT_EQ(read_after_a_short_read(p, write_kind::async), "defghi");
}

TEST(TcpStreamTest, AfterAWriteNowAnUpstreamStreamWaitsForEpollInsteadOfTryingFirst) {
#ifndef MICHI_DRAINED_READS
    GTEST_SKIP() << "drained reads are built only against Boost 1.81's epoll reactor";
#endif
    pair p;
    p.stream->wait_after_short_reads();
    EXPECT_EQ(read_after_a_short_read(p, write_kind::now), "defghi");
}

// Without a write between them, the read after a short one cannot know that no close waits
// behind the bytes taken: it tries recv() first, as Asio's own reads do.
TEST(TcpStreamTest, WithoutAWriteAnUpstreamStreamTriesTheReadFirst) {
    pair p;
    p.stream->wait_after_short_reads();
    EXPECT_EQ(read_after_a_short_read(p, write_kind::none), "def");
}

TEST(TcpStreamTest, AClientStreamTriesEachReadFirst) {
    pair p;
    EXPECT_EQ(read_after_a_short_read(p, write_kind::async), "def");
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

// write_now writes what the socket takes without the loop; after() gives the rest to an
// asynchronous write (the upstream request's write). The peer gets every byte, in order.

// What the peer reads until `n` bytes or the end (blocking, with a deadline of 10 s).
std::string peer_reads(pair& p, std::size_t n) {
    std::string got(n, '\0');
    p.peer->native_non_blocking(false);
    const timeval limit{10, 0};
    ::setsockopt(p.peer->native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    error_code ec;
    got.resize(net::read(*p.peer, net::buffer(got), ec));
    return got;
}

TEST(TcpStreamTest, WriteNowSendsSmallBuffersWholeAtOnce) {
    pair p;
    const std::string head = "POST / HTTP/1.1\r\n\r\n";
    const std::string body = "{}";
    const std::array<net::const_buffer, 3> bufs{net::buffer(head), net::const_buffer(),
                                                net::buffer(body)};
    error_code ec;
    EXPECT_EQ(p.stream->write_now(bufs, ec), head.size() + body.size());
    EXPECT_EQ(ec, error_code{});
    EXPECT_EQ(peer_reads(p, head.size() + body.size()), head + body);
}

TEST(TcpStreamTest, WriteNowOfMoreThanTheSocketTakesLeavesTheRestToAnAsyncWrite) {
    pair p;
    const std::string head = "head:";
    std::string body(16 * 1024 * 1024, '\0'); // far more than the loopback buffers hold
    for (std::size_t i = 0; i < body.size(); ++i) {
        body[i] = static_cast<char>('a' + i % 23);
    }
    const std::array<net::const_buffer, 2> bufs{net::buffer(head), net::buffer(body)};
    error_code ec;
    const std::size_t now = p.stream->write_now(bufs, ec);
    EXPECT_EQ(ec, error_code{});
    EXPECT_GT(now, 0u);
    ASSERT_LT(now, head.size() + body.size());
    std::optional<error_code> done;
    std::size_t rest = 0;
    net::async_write(*p.stream, after(bufs, now), [&](error_code e, std::size_t n) {
        done = e;
        rest = n;
    });
    std::thread loop([&] {
        for (int i = 0; i < 100000 && !done; ++i) {
            p.ioc.run_one_for(10s);
        }
    });
    const auto got = peer_reads(p, head.size() + body.size());
    loop.join();
    EXPECT_EQ(done, error_code{});
    EXPECT_EQ(now + rest, head.size() + body.size());
    EXPECT_TRUE(got == head + body) << "the bytes arrived changed or out of order";
}

TEST(TcpStreamTest, WriteNowToAPeerThatResetTheConnectionFails) {
    pair p;
    p.peer->set_option(net::socket_base::linger(true, 0)); // close sends a reset
    p.peer->close();
    const std::string body(64 * 1024, 'x');
    const std::array<net::const_buffer, 1> bufs{net::buffer(body)};
    error_code ec;
    // The first write may still be taken before the reset is seen; the next one is refused.
    for (int i = 0; i < 3 && !ec; ++i) {
        p.stream->write_now(bufs, ec);
    }
    EXPECT_TRUE(ec == net::error::connection_reset || ec == net::error::broken_pipe)
        << ec.message();
}

TEST(TcpStreamTest, WriteNowOnAClosedStreamWritesNothingAndTheAsyncWriteFails) {
    pair p;
    p.stream->close();
    const std::array<net::const_buffer, 1> bufs{net::buffer("x", 1)};
    error_code ec;
    EXPECT_EQ(p.stream->write_now(bufs, ec), 0u);
    std::optional<error_code> done;
    net::async_write(*p.stream, after(bufs, 0), [&](error_code e, std::size_t) { done = e; });
    for (int i = 0; i < 100 && !done; ++i) {
        p.ioc.run_one_for(10s);
    }
    ASSERT_TRUE(done.has_value()) << "the write never completed";
    EXPECT_TRUE(*done) << "a write on a closed socket succeeded";
}

TEST(TcpStreamTest, AfterSkipsBytesAcrossBuffers) {
    const std::string a = "abc", b = "", c = "defg";
    const std::array<net::const_buffer, 3> bufs{net::buffer(a), net::buffer(b), net::buffer(c)};
    const auto text = [](const std::array<net::const_buffer, 3>& x) {
        std::string s;
        for (const auto& y : x) {
            s.append(static_cast<const char*>(y.data()), y.size());
        }
        return s;
    };
    EXPECT_EQ(text(after(bufs, 0)), "abcdefg");
    EXPECT_EQ(text(after(bufs, 2)), "cdefg");
    EXPECT_EQ(text(after(bufs, 3)), "defg");
    EXPECT_EQ(text(after(bufs, 5)), "fg");
    EXPECT_EQ(text(after(bufs, 7)), "");
}

TEST(TcpStreamTest, AnEarlierDeadlineReplacesALaterOne) {
    pair p;
    p.stream->expires_after(10s);
    p.stream->expires_after(50ms);
    EXPECT_EQ(read_one(p), beast::error::timeout);
}

// A wait for readability (a stream that holds no buffer between events): nothing is read
// until the bytes come, then read_now() takes them at once; an empty socket reads nothing.
TEST(TcpStreamTest, AWaitForReadabilityEndsWhenBytesComeAndReadNowTakesThem) {
    pair p;
    char buf[16] = {};
    error_code ec;
    std::size_t n = 0;
    EXPECT_FALSE(p.stream->read_now(net::buffer(buf), ec, n)); // nothing there yet
    std::optional<error_code> waited;
    p.stream->async_wait_readable([&](error_code e) { waited = e; });
    steady_timer later(p.ioc.get_executor());
    write_later(p, later, 100ms);
    for (int i = 0; i < 100 && !waited; ++i) {
        ASSERT_NE(p.ioc.run_one_for(10s), 0u) << "the wait never ended";
    }
    ASSERT_EQ(waited, error_code{});
    ASSERT_TRUE(p.stream->read_now(net::buffer(buf), ec, n));
    EXPECT_EQ(ec, error_code{});
    EXPECT_EQ(std::string(buf, n), "x");
}

TEST(TcpStreamTest, AWaitForReadabilityPendingAtTheDeadlineTimesOut) {
    pair p;
    p.stream->expires_after(50ms);
    std::optional<error_code> waited;
    p.stream->async_wait_readable([&](error_code e) { waited = e; });
    for (int i = 0; i < 100 && !waited; ++i) {
        ASSERT_NE(p.ioc.run_one_for(10s), 0u) << "the wait never ended";
    }
    EXPECT_EQ(waited, beast::error::timeout);
    EXPECT_TRUE(p.stream->timed_out());
}

TEST(TcpStreamTest, ReadNowReportsThePeersClose) {
    pair p;
    p.peer->close();
    char buf[16] = {};
    error_code ec;
    std::size_t n = 0;
    const auto give_up = steady_clock::now() + 10s;
    while (!p.stream->read_now(net::buffer(buf), ec, n)) {
        ASSERT_LT(steady_clock::now(), give_up) << "the close never arrived";
        pollfd pfd{p.stream->socket().native_handle(), POLLIN, 0};
        ::poll(&pfd, 1, 10);
    }
    EXPECT_EQ(ec, net::error::eof);
    EXPECT_EQ(n, 0u);
}

} // namespace
} // namespace michi
