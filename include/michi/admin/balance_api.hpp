#pragma once
// GET /admin/balance: how the load is spread right now. Each route's strategy and targets
// with their weights and live signals (requests in flight, average time to first byte,
// cooling), each pooled provider's keys (by digest: cool-down left, requests and tokens in
// the last minute, their rpm/tpm), and the response cache (entries, bytes, hits, misses,
// dollars saved).

#include "michi/cache/memory_cache.hpp"
#include "michi/config/config.hpp"
#include "michi/routing/cooldowns.hpp"
#include "michi/routing/key_pools.hpp"
#include "michi/routing/signals.hpp"

#include <nlohmann/json.hpp>

namespace michi::admin {

// What GET /admin/balance reads.
struct balance_sources {
    const routing::signal_board& signals;
    routing::key_pools& key_pools;
    const routing::cooldowns& cooldowns;
    const cache::memory_cache& cache;
};

nlohmann::json balance_json(const config::config& cfg, const balance_sources& s);

} // namespace michi::admin
