#pragma once
// What every worker shares: the current snapshot (swapped atomically on reload), the stores,
// the in-process ledger, cool-downs, live signals and provider key pools, the response
// cache's memory, metrics, the recent fallbacks, the thread for blocking
// work, the pool for CPU work on large bodies, and the in-flight count with readiness and the drain flag.

#include "michi/cache/memory_cache.hpp"
#include "michi/core/inflight.hpp"
#include "michi/core/offload.hpp"
#include "michi/core/published.hpp"
#include "michi/guard/local_ledger.hpp"
#include "michi/obs/fallback_log.hpp"
#include "michi/obs/metrics.hpp"
#include "michi/pipeline/snapshot.hpp"
#include "michi/routing/cooldowns.hpp"
#include "michi/routing/key_pools.hpp"
#include "michi/routing/signals.hpp"
#include "michi/store/key_registry.hpp"
#include "michi/store/key_sync.hpp"
#include "michi/redis/redis_url.hpp"
#include "michi/store/request_log.hpp"

#include <atomic>
#include <memory>
#include <optional>
#include <thread>

namespace michi {

class shared_state {
public:
    // Opens the stores named by the config (throws std::runtime_error when it cannot).
    explicit shared_state(std::shared_ptr<const pipeline::snapshot> rt,
                          guard::wall_clock clock = std::chrono::system_clock::now);
    ~shared_state();
    shared_state(const shared_state&) = delete;
    shared_state& operator=(const shared_state&) = delete;

    guard::local_ledger& ledger() { return *ledger_; }
    const guard::wall_clock& clock() const { return clock_; }
    // store.redis parsed; nullopt when the ledger is in-process (read at start: changing it
    // needs a restart).
    const std::optional<redis::redis_url>& redis_url() const { return redis_url_; }
    guard::spend_store& store() { return *store_; }
    routing::cooldowns& cooldowns() { return cooldowns_; }
    routing::signal_board& signals() { return signals_; }
    routing::key_pools& key_pools() { return key_pools_; }
    // The response cache's memory (its bound is read at start: a change needs a restart).
    cache::memory_cache& response_cache() { return response_cache_; }
    obs::metrics& metrics() { return metrics_; }
    obs::fallback_log& fallbacks() { return fallbacks_; }
    store::request_log& request_log() { return *request_log_; }
    store::key_registry& key_registry() { return *key_registry_; }
    // The thread blocking work (SQLite) is handed to, away from the event loops.
    net::io_context& blocking() { return blocking_; }
    // The threads CPU work proportional to a large request's size is handed to.
    cpu_pool& cpu() { return cpu_; }

    std::shared_ptr<const pipeline::snapshot> snapshot() const { return rt_.get(); }
    // For a reader on the request path (see published.hpp): no lock, no shared count.
    const published<pipeline::snapshot>& snapshots() const { return rt_; }
    void swap(std::shared_ptr<const pipeline::snapshot> rt) {
        key_pools_.configure(*rt->cfg);
        rt_.set(std::move(rt));
    }

    std::atomic<bool> ready{false};
    inflight_count inflight;

private:
    published<pipeline::snapshot> rt_;
    guard::wall_clock clock_;
    std::optional<redis::redis_url> redis_url_;
    std::unique_ptr<guard::spend_store> store_;
    std::unique_ptr<guard::local_ledger> ledger_;
    routing::cooldowns cooldowns_;
    routing::signal_board signals_;
    routing::key_pools key_pools_;
    cache::memory_cache response_cache_;
    obs::metrics metrics_;
    obs::fallback_log fallbacks_;
    std::unique_ptr<store::request_log> request_log_;
    std::unique_ptr<store::key_registry> key_registry_;
    std::unique_ptr<store::key_sync> key_sync_; // after the registry: stops before it goes
    net::io_context blocking_;
    std::thread blocking_thread_;
    cpu_pool cpu_;
};

} // namespace michi
