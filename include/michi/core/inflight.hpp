#pragma once
// Requests in flight, for the drain: counted by the sessions, waited on by the gateway's
// stop. The draining flag tells the sessions to close kept-alive connections.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace michi {

class inflight_count {
public:
    void started() noexcept { count_.fetch_add(1, std::memory_order_relaxed); }
    void finished() {
        if (count_.fetch_sub(1, std::memory_order_acq_rel) == 1 && draining.load()) {
            std::lock_guard lock(mu_);
            idle_.notify_all();
        }
    }
    std::int64_t now() const noexcept { return count_.load(std::memory_order_relaxed); }
    // Blocks until no request is in flight or the timeout passes; true when idle.
    bool wait_idle(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mu_);
        return idle_.wait_for(lock, timeout, [this] { return count_.load() == 0; });
    }

    std::atomic<bool> draining{false};

private:
    std::atomic<std::int64_t> count_{0};
    std::mutex mu_;
    std::condition_variable idle_;
};

// Counts one request in flight, whatever way it ends.
class inflight_guard {
public:
    explicit inflight_guard(inflight_count& c) : c_(c) { c_.started(); }
    ~inflight_guard() { c_.finished(); }
    inflight_guard(const inflight_guard&) = delete;
    inflight_guard& operator=(const inflight_guard&) = delete;

private:
    inflight_count& c_;
};

} // namespace michi
