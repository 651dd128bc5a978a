#pragma once
// What the API plane uses of its worker and of the gateway, handed to it by the worker (the
// composition root builds it; nothing here reaches for a global).

#include "michi/auth/authenticator.hpp"
#include "michi/cache/response_cache.hpp"
#include "michi/core/net.hpp"
#include "michi/core/offload.hpp"
#include "michi/core/string_pool.hpp"
#include "michi/downstream/hang_up_board.hpp"
#include "michi/guard/ledger.hpp"
#include "michi/routing/random.hpp"
#include "michi/obs/fallback_log.hpp"
#include "michi/obs/metrics.hpp"
#include "michi/routing/cooldowns.hpp"
#include "michi/routing/key_pools.hpp"
#include "michi/routing/signals.hpp"
#include "michi/store/request_log.hpp"
#include "michi/upstream/client.hpp"

#include <random>

namespace michi::pipeline {

struct deps {
    executor ex;
    guard::ledger& ledger; // the worker's (shared through Redis) or the gateway's in-process one
    auth::authenticator& auth;
    upstream::client& upstream;
    routing::cooldowns& cooldowns;
    routing::signal_board& signals; // the live signals of route targets (strategies)
    routing::key_pools& key_pools;  // provider keys: turns, cool-downs, rpm/tpm
    cache::response_cache& cache;   // the response cache, through this worker
    obs::metrics& metrics;
    store::request_log& request_log;
    obs::fallback_log& fallbacks;
    net::io_context& blocking;   // the thread for blocking work (SQLite)
    string_pool& strings;        // the worker's spare strings for upstream requests
    std::string& fields;         // the worker's scratch for a whole answer's head fields
    routing::random_engine& rng; // the worker's, for backoff jitter
    cpu_pool& cpu;               // the threads for CPU work on large bodies (large_body.hpp)
    downstream::hang_up_board& hang_ups; // clients watched while their requests wait long
};

} // namespace michi::pipeline
