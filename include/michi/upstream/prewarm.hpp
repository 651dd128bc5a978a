#pragma once
// Connections opened before the first requests need them (a provider's `prewarm`): one
// worker's, opened in the background on its loop and kept in its pool as idle keep-alive
// connections, so that the first requests to a provider after a start or a reload pay no
// connect and no TLS handshake.

#include "michi/upstream/endpoint.hpp"
#include "michi/upstream/pool.hpp"

#include <chrono>
#include <functional>
#include <string>
#include <unordered_map>

namespace michi::upstream {

// One worker's opening of connections ahead of requests. Only used on its worker's thread.
class warmer {
public:
    // Why a provider's connections could not be opened (called once per warm()).
    using on_failure = std::function<void(const std::string& why)>;

    warmer(executor ex, pool& idle, tcp_resolver& resolver)
        : ex_(ex), pool_(idle), resolver_(resolver) {}
    warmer(const warmer&) = delete;
    warmer& operator=(const warmer&) = delete;

    // Brings the endpoint's idle connections up to `count` (those idle and those being opened
    // count), without waiting: the endpoint is resolved once, then each connection connects
    // and handshakes on its own, within `timeout`, and goes to the pool (which keeps at most
    // `keep_idle`). The first failure is reported to `failed`; the others are not retried.
    void warm(const endpoint& ep, std::size_t count, std::chrono::milliseconds timeout,
              std::size_t keep_idle, on_failure failed);

    // Connections being opened now, to every endpoint.
    std::size_t opening() const;

private:
    struct round;
    awaitable<void> open_all(endpoint ep, std::size_t count, std::chrono::milliseconds timeout,
                             std::size_t keep_idle, on_failure failed);
    awaitable<void> open_one(std::shared_ptr<round> r, tcp_resolver::results_type addresses);

    executor ex_;
    pool& pool_;
    tcp_resolver& resolver_;
    std::unordered_map<std::string, std::size_t> opening_; // by pool key
};

} // namespace michi::upstream
