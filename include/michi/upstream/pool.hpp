#pragma once
// Per-worker pool of idle keep-alive upstream connections, keyed by endpoint, and the
// worker's TLS sessions to resume when it opens new ones. Only touched from its worker's
// thread, so it needs no lock.

#include "michi/upstream/connection.hpp"
#include "michi/upstream/tls_sessions.hpp"

#include <deque>
#include <unordered_map>

namespace michi::upstream {

class pool {
public:
    // Idle connections older than this are closed rather than reused (providers drop
    // idle keep-alive connections after about a minute).
    static constexpr std::chrono::seconds idle_expiry{20};

    // The most recently used live idle connection for key, or nullptr.
    std::unique_ptr<connection> take(const std::string& key);
    // Keeps the connection for reuse while the endpoint has fewer than cap idle ones.
    void put(std::unique_ptr<connection> c, std::size_t cap);
    std::size_t idle_count() const;
    void clear() { idle_.clear(); }
    tls_sessions& sessions() noexcept { return sessions_; }

private:
    std::unordered_map<std::string, std::deque<std::unique_ptr<connection>>> idle_;
    tls_sessions sessions_;
};

} // namespace michi::upstream
