#pragma once
// The operator's plane: GET /metrics (Prometheus), the admin API under /admin/ (keys,
// usage, routes; on admin.key) and the dashboard under /dashboard/.

#include "michi/cache/memory_cache.hpp"
#include "michi/config/config.hpp"
#include "michi/core/inflight.hpp"
#include "michi/core/result.hpp"
#include "michi/downstream/call.hpp"
#include "michi/downstream/client_io.hpp"
#include "michi/guard/ledger.hpp"
#include "michi/obs/fallback_log.hpp"
#include "michi/obs/metrics.hpp"
#include "michi/routing/cooldowns.hpp"
#include "michi/routing/key_pools.hpp"
#include "michi/routing/signals.hpp"
#include "michi/store/key_registry.hpp"
#include "michi/store/request_log.hpp"

#include <functional>
#include <memory>

namespace michi::admin {

// What the admin plane uses of its worker and of the gateway.
struct deps {
    executor ex;
    guard::ledger& ledger; // the worker's view of spend and live rates
    store::key_registry& keys;
    store::request_log& request_log;
    routing::cooldowns& cooldowns;
    routing::signal_board& signals; // the route targets' live signals
    routing::key_pools& key_pools;  // provider keys' cool-downs and minute counts
    cache::memory_cache& cache;     // the response cache's memory
    obs::fallback_log& fallbacks;
    obs::metrics& metrics;
    inflight_count& inflight;
    net::io_context& blocking; // the thread for blocking work (SQLite)
    // Puts an edited config in force (a route changed at run time); an error naming the
    // problem when it cannot be.
    std::function<result<void>(std::shared_ptr<const config::config>)> apply;
};

// True when the path belongs here.
bool owns(std::string_view path);
// Serves the request to its end on the config in force.
awaitable<void> handle(deps& d, downstream::client_io& io, downstream::call& c,
                       const config::config& cfg);

} // namespace michi::admin
