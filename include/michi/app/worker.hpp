#pragma once
// One event loop on one thread, with its own upstream pool and resolver. A client
// connection and all its upstream work stay on the worker that accepted it.

#include "michi/app/shared_state.hpp"
#include "michi/core/net.hpp"
#include "michi/guard/redis_ledger.hpp"
#include "michi/upstream/pool.hpp"

#include <memory>

namespace michi {

class worker {
public:
    // Every socket, acceptor and timer of a worker is used on its thread only (the
    // acceptor is closed through a post to it): the reactor needs no lock around each
    // socket's operations. Posting to the worker from other threads stays safe (the
    // scheduler and the reactor's registrations keep theirs).
    explicit worker(shared_state& state)
        : state_(state),
          ioc_(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO),
          resolver_(ioc_.get_executor()) {
        if (const auto& url = state.redis_url()) {
            shared_ledger_ =
                std::make_unique<guard::redis_ledger>(ioc_.get_executor(), *url, state.clock());
        }
    }

    net::io_context& ioc() { return ioc_; }
    michi::executor executor() { return ioc_.get_executor(); }
    shared_state& state() { return state_; }
    upstream::pool& pool() { return pool_; }
    tcp_resolver& resolver() { return resolver_; }
    // The ledger shared through Redis (store.redis), on this worker's connection; null when
    // the in-process ledger (state().ledger()) keeps the limits.
    guard::redis_ledger* shared_ledger() { return shared_ledger_.get(); }

private:
    shared_state& state_;
    net::io_context ioc_;
    tcp_resolver resolver_;
    upstream::pool pool_;
    std::unique_ptr<guard::redis_ledger> shared_ledger_;
};

} // namespace michi
