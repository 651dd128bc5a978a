#include "michi/upstream/prewarm.hpp"

#include "michi/upstream/connection.hpp"

#include <memory>

namespace michi::upstream {

// What the connections of one warm() share: where to, and whether a failure was reported.
struct warmer::round {
    endpoint ep;
    std::chrono::milliseconds timeout;
    std::size_t keep_idle;
    on_failure failed;
    bool reported = false;

    void fail(const std::string& why) {
        if (!reported && failed) {
            reported = true;
            failed(why);
        }
    }
};

void warmer::warm(const endpoint& ep, std::size_t count, std::chrono::milliseconds timeout,
                  std::size_t keep_idle, on_failure failed) {
    count = std::min(count, keep_idle);
    const std::size_t have = pool_.idle_count(ep.pool_key) + opening_[ep.pool_key];
    if (count <= have) {
        return;
    }
    opening_[ep.pool_key] += count - have;
    net::co_spawn(ex_, open_all(ep, count - have, timeout, keep_idle, std::move(failed)),
                  net::detached);
}

std::size_t warmer::opening() const {
    std::size_t n = 0;
    for (const auto& [key, count] : opening_) {
        n += count;
    }
    return n;
}

awaitable<void> warmer::open_all(endpoint ep, std::size_t count, std::chrono::milliseconds timeout,
                                 std::size_t keep_idle, on_failure failed) {
    auto r = std::make_shared<round>(round{std::move(ep), timeout, keep_idle, std::move(failed)});
    // Resolved once for all of them (the resolver answers one name at a time).
    auto [ec, addresses] = co_await resolver_.async_resolve(r->ep.host, r->ep.port, nothrow);
    if (ec) {
        opening_[r->ep.pool_key] -= count;
        r->fail("resolve error (" + ec.message() + ")");
        co_return;
    }
    for (std::size_t i = 0; i < count; ++i) {
        net::co_spawn(ex_, open_one(r, addresses), net::detached);
    }
}

awaitable<void> warmer::open_one(std::shared_ptr<round> r, tcp_resolver::results_type addresses) {
    auto c = std::make_unique<connection>(ex_, r->ep);
    const auto ec = co_await c->open(addresses, pool_.sessions(), r->timeout);
    --opening_[r->ep.pool_key];
    if (ec) {
        c->close();
        r->fail(ec == beast::error::timeout ? std::string("connect timeout")
                                            : "connect error (" + ec.message() + ")");
        co_return;
    }
    pool_.put(std::move(c), r->keep_idle);
}

} // namespace michi::upstream
