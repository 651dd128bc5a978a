#pragma once
// The running gateway: worker threads each with their own event loop and acceptor
// (SO_REUSEPORT), the shared state, reload and drain. The daemon and the integration
// tests both drive this class.

#include "michi/app/shared_state.hpp"
#include "michi/app/worker.hpp"

#include <memory>
#include <thread>
#include <utility>
#include <vector>

namespace michi {

class gateway {
public:
    // Opens the store and loads the ledger; throws std::runtime_error when it cannot.
    explicit gateway(std::shared_ptr<const pipeline::snapshot> rt,
                     guard::wall_clock clock = std::chrono::system_clock::now);
    ~gateway();
    gateway(const gateway&) = delete;
    gateway& operator=(const gateway&) = delete;

    // Binds the listeners and starts the workers; throws std::runtime_error on failure.
    void start();
    std::uint16_t port() const { return port_; }
    shared_state& state() { return state_; }

    // Swaps in a new config (listen, threads and server.tls need a restart).
    bool reload(std::shared_ptr<const config::config> cfg, std::string& error);
    // The same for an edited config (the admin API's route changes): an error when it
    // cannot be put in force.
    result<void> apply(std::shared_ptr<const config::config> cfg);
    // Stops accepting and waits for in-flight requests; true when all finished in time.
    bool drain(std::chrono::milliseconds timeout);
    // Stops the workers and joins their threads.
    void stop();
    // The idle upstream connections the workers keep, and those being opened ahead of
    // requests (`prewarm`), asked of each worker on its loop (the loops must be running).
    std::pair<std::size_t, std::size_t> upstream_connections();

private:
    void settle_shared();
    // Has every worker open the snapshot's providers' `prewarm` connections in the background.
    void prewarm(const std::shared_ptr<const pipeline::snapshot>& rt);

    shared_state state_;
    std::unique_ptr<ssl::context> server_tls_;
    std::vector<std::unique_ptr<worker>> workers_;
    std::vector<std::unique_ptr<tcp_acceptor>> acceptors_;
    std::vector<std::thread> threads_;
    std::uint16_t port_ = 0;
    bool stopped_ = false;
};

} // namespace michi
