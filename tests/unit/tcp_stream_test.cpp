// The deadline stream: a read still pending at its deadline fails with beast's timeout and
// the socket is closed; a deadline moved later, or removed, before the wait wakes lets the
// read finish when the data comes.

#include "michi/core/tcp_stream.hpp"

#include <boost/asio/read.hpp>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

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

TEST(TcpStreamTest, AnEarlierDeadlineReplacesALaterOne) {
    pair p;
    p.stream->expires_after(10s);
    p.stream->expires_after(50ms);
    EXPECT_EQ(read_one(p), beast::error::timeout);
}

// write_all: what the socket takes at once is written without waiting, the rest
// asynchronously; either way the peer gets every byte, in order.

// Runs write_all(stream, buffers) on the loop while the peer reads `expect` bytes (unless
// `peer_reads` is false); returns the write's result and what the peer got.
template <class Buffers>
std::tuple<error_code, std::size_t, std::string>
write_and_read(pair& p, const Buffers& buffers, std::size_t expect, bool peer_reads = true) {
    std::optional<std::tuple<error_code, std::size_t>> wrote;
    net::co_spawn(
        p.ioc.get_executor(),
        [&]() -> awaitable<void> { wrote = co_await write_all(*p.stream, buffers); },
        net::detached);
    std::string got(expect, '\0');
    std::optional<error_code> read;
    if (peer_reads) {
        net::async_read(*p.peer, net::buffer(got),
                        [&](error_code ec, std::size_t) { read = ec; });
    }
    for (int i = 0; i < 100000 && !(wrote && (read || !peer_reads)); ++i) {
        if (p.ioc.run_one_for(10s) == 0) {
            break;
        }
    }
    EXPECT_TRUE(wrote.has_value()) << "the write never completed";
    if (peer_reads) {
        EXPECT_EQ(read.value_or(net::error::would_block), error_code{});
    }
    const auto [ec, n] = wrote.value_or(std::tuple{error_code(net::error::would_block), 0});
    return {ec, n, got};
}

TEST(TcpStreamTest, WriteAllSendsSeveralBuffersAsOneMessage) {
    pair p;
    // More buffers than one system call gathers: the rest follows.
    std::vector<std::string> parts;
    std::vector<net::const_buffer> buffers;
    std::string all;
    for (int i = 0; i < 11; ++i) {
        parts.push_back("part " + std::to_string(i) + (i == 3 ? "" : ";"));
    }
    parts[5].clear(); // an empty buffer in the middle is skipped
    for (const auto& s : parts) {
        buffers.push_back(net::buffer(s));
        all += s;
    }
    const auto [ec, n, got] = write_and_read(p, buffers, all.size());
    EXPECT_EQ(ec, error_code{});
    EXPECT_EQ(n, all.size());
    EXPECT_EQ(got, all);
}

TEST(TcpStreamTest, WriteAllOfMoreThanTheSocketTakesWaitsForThePeerAndSendsItWhole) {
    pair p;
    // Far more than the loopback's send and receive buffers hold at once.
    std::string head = "head:";
    std::string body(16 * 1024 * 1024, '\0');
    for (std::size_t i = 0; i < body.size(); ++i) {
        body[i] = static_cast<char>('a' + i % 23);
    }
    const std::array<net::const_buffer, 2> buffers{net::buffer(head), net::buffer(body)};
    const auto [ec, n, got] = write_and_read(p, buffers, head.size() + body.size());
    EXPECT_EQ(ec, error_code{});
    EXPECT_EQ(n, head.size() + body.size());
    EXPECT_TRUE(got == head + body) << "the bytes arrived changed or out of order";
}

TEST(TcpStreamTest, WriteAllToAPeerThatNeverReadsTimesOutAtTheDeadline) {
    pair p;
    std::string body(16 * 1024 * 1024, 'x');
    p.stream->expires_after(100ms);
    const auto [ec, n, got] = write_and_read(p, net::buffer(body), 0, false);
    EXPECT_EQ(ec, beast::error::timeout);
    EXPECT_LT(n, body.size());
    EXPECT_FALSE(p.stream->socket().is_open());
}

TEST(TcpStreamTest, WriteAllToAPeerThatResetTheConnectionFails) {
    pair p;
    p.peer->set_option(net::socket_base::linger(true, 0)); // close sends a reset
    p.peer->close();
    std::string body(64 * 1024, 'x');
    error_code ec;
    // The first write may still be taken before the reset is seen; the next one is refused.
    for (int i = 0; i < 3 && !ec; ++i) {
        ec = std::get<0>(write_and_read(p, net::buffer(body), 0, false));
    }
    EXPECT_TRUE(ec == net::error::connection_reset || ec == net::error::broken_pipe)
        << ec.message();
}

TEST(TcpStreamTest, WriteAllOnAClosedStreamFails) {
    pair p;
    p.stream->close();
    const auto [ec, n, got] = write_and_read(p, net::buffer("x", 1), 0, false);
    EXPECT_TRUE(ec) << "a write on a closed socket succeeded";
    EXPECT_EQ(n, 0u);
}

} // namespace
} // namespace michi
