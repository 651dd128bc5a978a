#pragma once
// Per-worker pool of idle keep-alive upstream connections, keyed by endpoint, and the
// worker's TLS sessions to resume when it opens new ones. Only touched from its worker's
// thread, so it needs no lock.

#include "michi/upstream/connection.hpp"
#include "michi/upstream/tls_sessions.hpp"

#include <deque>
#include <memory>
#include <unordered_map>

namespace michi::upstream {

class pool {
public:
    // Idle connections older than this are closed (providers drop idle keep-alive
    // connections after about a minute): by a sweep on the worker's loop once they pass it,
    // and at the latest when take() meets them.
    static constexpr std::chrono::seconds idle_expiry{20};

    pool() = default;
    pool(const pool&) = delete;
    pool& operator=(const pool&) = delete;

    // The most recently used live idle connection for key, or nullptr.
    std::unique_ptr<connection> take(const std::string& key);
    // Keeps the connection for reuse while the endpoint has fewer than cap idle ones.
    void put(std::unique_ptr<connection> c, std::size_t cap);
    std::size_t idle_count() const;
    // The idle connections kept for one endpoint.
    std::size_t idle_count(const std::string& key) const;
    void clear() { idle_.clear(); }
    tls_sessions& sessions() noexcept { return sessions_; }

private:
    // Closes every idle connection past its expiry; then waits for the next one to expire,
    // while any is left.
    void sweep();
    void arm(steady_clock::time_point at);

    std::unordered_map<std::string, std::deque<std::unique_ptr<connection>>> idle_;
    // The sweep's timer, made on the worker's executor with the first connection kept; armed
    // while idle connections are kept (one wait at a time, not one per connection).
    std::unique_ptr<steady_timer> sweep_timer_;
    bool sweep_armed_ = false;
    // Tells a sweep completion whether the pool still exists (the timer's wait may complete
    // after the pool was destroyed with its worker).
    std::shared_ptr<char> alive_ = std::make_shared<char>();
    tls_sessions sessions_;
};

} // namespace michi::upstream
