#pragma once
// One event loop on one thread, with its own upstream pool and client, resolver, Redis
// ledger (store.redis), caches and the dependency structs its connections are served with.
// A client connection and all its upstream work stay on the worker that accepted it.

#include "michi/admin/admin_api.hpp"
#include "michi/app/shared_state.hpp"
#include "michi/auth/authenticator.hpp"
#include "michi/cache/response_cache.hpp"
#include "michi/core/net.hpp"
#include "michi/core/string_pool.hpp"
#include "michi/downstream/hang_up_board.hpp"
#include "michi/guard/redis_ledger.hpp"
#include "michi/pipeline/deps.hpp"
#include "michi/server/router.hpp"
#include "michi/server/session.hpp"
#include "michi/upstream/client.hpp"
#include "michi/upstream/pool.hpp"
#include "michi/upstream/prewarm.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>

namespace michi {

// One round of opening providers' `prewarm` connections (a start or a reload) over every
// worker: a provider whose connections could not be opened is logged once, by the first
// worker that meets it.
class prewarm_round {
public:
    explicit prewarm_round(const config::config& cfg);
    void failed(const std::string& provider, const std::string& why);

private:
    std::unordered_map<std::string, std::atomic<bool>> logged_; // (its keys fixed when made)
};

class worker {
public:
    // apply: puts an edited config in force (the admin API's route changes).
    worker(shared_state& state,
           std::function<result<void>(std::shared_ptr<const config::config>)> apply);

    net::io_context& ioc() { return ioc_; }
    michi::executor executor() { return ioc_.get_executor(); }
    // The ledger shared through Redis (store.redis), on this worker's connection; null when
    // the in-process ledger keeps the limits.
    guard::redis_ledger* shared_ledger() { return shared_ledger_.get(); }
    server::connection_deps& connections() { return connection_deps_; }
    // Opens, in the background, the `prewarm` connections of the snapshot's providers that
    // this worker's pool lacks. On the worker's thread (post it there).
    void prewarm(const pipeline::snapshot& rt, const std::shared_ptr<prewarm_round>& round);
    // Idle upstream connections in the pool, and those being opened ahead of requests.
    std::size_t idle_upstream() const { return pool_.idle_count(); }
    std::size_t warming() const { return warmer_.opening(); }

private:
    // Every socket, acceptor and timer of a worker is used on its thread only (the acceptor
    // is closed through a post to it): the reactor needs no lock around each socket's
    // operations. Posting to the worker from other threads stays safe.
    net::io_context ioc_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    tcp_resolver resolver_{ioc_.get_executor()};
    upstream::pool pool_;
    upstream::client upstream_{ioc_.get_executor(), pool_, resolver_};
    upstream::warmer warmer_{ioc_.get_executor(), pool_, resolver_};
    std::unique_ptr<guard::redis_ledger> shared_ledger_;
    cache::response_cache cache_;
    auth::authenticator auth_;
    string_pool strings_;
    std::string fields_;
    routing::random_engine rng_{std::random_device{}()};
    // A request's client is watched for a hang-up once it has waited this long for the
    // upstream's answer (a watch costs a system call; most answers come sooner).
    downstream::hang_up_board hang_ups_{ioc_.get_executor(), std::chrono::milliseconds(100)};
    pipeline::deps api_;
    admin::deps admin_;
    server::deps planes_;
    server::connection_deps connection_deps_;
};

} // namespace michi
