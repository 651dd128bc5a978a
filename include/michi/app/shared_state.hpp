#pragma once
// State shared by every worker: the current runtime snapshot (swapped atomically on
// reload), the ledger and its store, readiness, drain flag and the in-flight count.

#include "michi/app/runtime.hpp"
#include "michi/core/published.hpp"
#include "michi/guard/ledger.hpp"
#include "michi/obs/metrics.hpp"
#include "michi/routing/cooldowns.hpp"
#include "michi/store/key_registry.hpp"
#include "michi/store/key_sync.hpp"
#include "michi/store/redis_url.hpp"
#include "michi/store/request_log.hpp"
#include "michi/store/spend_store.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>

namespace michi {

// One fallback, for the admin API's "recent fallbacks".
struct fallback_event {
    std::int64_t ts_ms = 0;
    std::string request_id;
    std::string route;
    std::string from;
    std::string to;
    std::string reason;
};

class shared_state {
public:
    // Opens the store named by the config (throws std::runtime_error when it cannot).
    explicit shared_state(std::shared_ptr<const runtime> rt,
                          guard::wall_clock clock = std::chrono::system_clock::now);
    ~shared_state();

    guard::ledger& ledger() { return *ledger_; }
    const guard::wall_clock& clock() const { return clock_; }
    // store.redis parsed; nullopt when the ledger is in-process (read at start: changing it
    // needs a restart).
    const std::optional<store::redis_url>& redis_url() const { return redis_url_; }
    store::spend_store& store() { return *store_; }
    routing::cooldowns& cooldowns() { return cooldowns_; }
    obs::metrics& metrics() { return metrics_; }
    store::request_log& request_log() { return *request_log_; }
    store::key_registry& key_registry() { return *key_registry_; }

    void note_fallback(fallback_event e) {
        std::lock_guard lock(fallback_mu_);
        fallbacks_.push_back(std::move(e));
        while (fallbacks_.size() > 50) {
            fallbacks_.pop_front();
        }
    }
    std::vector<fallback_event> recent_fallbacks() const {
        std::lock_guard lock(fallback_mu_);
        return {fallbacks_.rbegin(), fallbacks_.rend()};
    }

    std::shared_ptr<const runtime> snapshot() const { return rt_.get(); }
    // For a reader on the request path (see published.hpp): no lock, no shared count.
    const published<runtime>& runtime_source() const { return rt_; }
    void swap(std::shared_ptr<const runtime> rt) { rt_.set(std::move(rt)); }

    void request_started() { inflight.fetch_add(1, std::memory_order_relaxed); }
    void request_finished() {
        if (inflight.fetch_sub(1, std::memory_order_acq_rel) == 1 && draining) {
            std::lock_guard lock(idle_mu_);
            idle_cv_.notify_all();
        }
    }
    // Blocks until no request is in flight or the timeout passes; true when idle.
    bool wait_idle(std::chrono::milliseconds timeout) {
        std::unique_lock lock(idle_mu_);
        return idle_cv_.wait_for(lock, timeout, [this] { return inflight.load() == 0; });
    }

    std::atomic<bool> ready{false};
    std::atomic<bool> draining{false};
    std::atomic<std::int64_t> inflight{0};

private:
    published<runtime> rt_;
    guard::wall_clock clock_;
    std::optional<store::redis_url> redis_url_;
    std::unique_ptr<store::spend_store> store_;
    std::unique_ptr<guard::ledger> ledger_;
    routing::cooldowns cooldowns_;
    obs::metrics metrics_;
    std::unique_ptr<store::request_log> request_log_;
    std::unique_ptr<store::key_registry> key_registry_;
    std::unique_ptr<store::key_sync> key_sync_; // after the registry: stops before it goes
    mutable std::mutex fallback_mu_;
    std::deque<fallback_event> fallbacks_;
    std::mutex idle_mu_;
    std::condition_variable idle_cv_;
};

} // namespace michi
