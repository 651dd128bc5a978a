// A Redis connection reaching its server again after the server moved or its name's lookup
// hung: each connect looks the host up again, on a thread of its own, so that a lookup the
// DNS server leaves hanging (a container's name asked while that container restarts hangs for
// tens of seconds) holds back no later try. Against a real redis-server; the name's lookups
// are the test's own (one left hanging, then answering), as a container network's DNS would.
#include "support/redis_server.hpp"

#include "michi/redis/redis_connection.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <memory>
#include <mutex>

namespace michi::test {
namespace {

using namespace std::chrono_literals;
using redis::redis_value;

// The lookups of the name "redis": 127.0.0.1 and the server's port of the moment; the first
// one, when asked to, hangs until released (then fails, as a DNS query that timed out).
struct fake_dns {
    std::mutex m;
    std::condition_variable cv;
    bool hang_first = false;
    bool released = false;
    bool first_returned = false;
    int calls = 0;
    std::uint16_t port = 0;

    void release() {
        std::unique_lock lock(m);
        released = true;
        cv.notify_all();
        cv.wait_for(lock, 10s, [&] { return first_returned || !hang_first; });
    }
};

redis::blocking_lookup lookup_of(const std::shared_ptr<fake_dns>& dns) {
    return [dns](const std::string&, std::uint16_t, error_code& ec) {
        std::unique_lock lock(dns->m);
        if (++dns->calls == 1 && dns->hang_first) {
            dns->cv.wait_for(lock, 60s, [&] { return dns->released; });
            dns->first_returned = true;
            dns->cv.notify_all();
            ec = net::error::host_not_found;
            return std::vector<tcp::endpoint>{};
        }
        return std::vector<tcp::endpoint>{
            tcp::endpoint(net::ip::make_address("127.0.0.1"), dns->port)};
    };
}

// PING until one is answered, each try a pause after the last (at most `tries`): whether one
// was, and the first try's error.
struct ping_outcome {
    bool answered = false;
    error_code first_error;
};

awaitable<void> ping_loop(redis::redis_connection& conn, int tries, ping_outcome& out) {
    steady_timer pause(co_await net::this_coro::executor);
    // (Made outside the co_await: GCC 12 cannot compile an initializer list inside one.)
    const std::vector<std::string> args{"PING"};
    const auto ping = redis::redis_command(args).bytes();
    for (int i = 0; i < tries && !out.answered; ++i) {
        const auto reply = co_await conn.async_call(ping, false, nothrow_op);
        const auto& ec = std::get<0>(reply);
        const auto& v = std::get<1>(reply);
        if (i == 0) {
            out.first_error = ec;
        }
        out.answered = !ec && v.type == redis_value::kind::status && v.str == "PONG";
        pause.expires_after(50ms);
        co_await pause.async_wait(nothrow_op);
    }
}

ping_outcome ping_until_answered(redis::redis_connection& conn, net::io_context& ioc, int tries) {
    ping_outcome out;
    // (Stopped when the loop ends: the connection keeps reading its idle socket.)
    net::co_spawn(ioc, ping_loop(conn, tries, out), [&](const std::exception_ptr&) { ioc.stop(); });
    ioc.run();
    ioc.restart();
    return out;
}

TEST(RedisConnectionTest, ALookupLeftHangingHoldsBackNoLaterConnect) {
    redis_server server;
    auto dns = std::make_shared<fake_dns>();
    dns->hang_first = true;
    dns->port = server.port();
    net::io_context ioc;
    {
        redis::redis_connection conn(ioc.get_executor(), {"redis", 6379}, {.backoff = 50ms}, 300ms,
                                     lookup_of(dns));
        // The first connect's lookup hangs: that try ends with the connect's timeout; a later
        // one looks the name up again beside it and reaches the server (within ~60 tries of
        // 300 ms each at the most, though the second one does).
        const auto out = ping_until_answered(conn, ioc, 60);
        EXPECT_TRUE(out.first_error) << "the first try, its lookup hanging, cannot succeed";
        EXPECT_TRUE(out.answered) << "no PING answered while the first lookup hangs";
        std::lock_guard lock(dns->m);
        EXPECT_FALSE(dns->first_returned) << "answered only once the hung lookup ended";
        EXPECT_GE(dns->calls, 2);
    }
    dns->release();
}

TEST(RedisConnectionTest, AServerBackOnAnotherPortIsReachedOnTheNextTry) {
    auto dns = std::make_shared<fake_dns>();
    net::io_context ioc;
    auto first = std::make_unique<redis_server>();
    dns->port = first->port();
    redis::redis_connection conn(ioc.get_executor(), {"redis", 6379}, {.backoff = 50ms}, 300ms,
                                 lookup_of(dns));
    ASSERT_TRUE(ping_until_answered(conn, ioc, 1).answered);
    // The server goes; another comes up elsewhere, and the name now says where.
    first.reset();
    redis_server second;
    {
        std::lock_guard lock(dns->m);
        dns->port = second.port();
    }
    const auto out = ping_until_answered(conn, ioc, 20);
    EXPECT_TRUE(out.answered) << "the connection kept the address the server left";
}

} // namespace
} // namespace michi::test
