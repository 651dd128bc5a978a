#pragma once
// Target cool-downs shared by every worker: a target that answered 429 (for its
// retry-after, else `cooldown`) or failed `cooldown_failures` times in a row is skipped
// for a while, so later requests go straight to the next target.

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace michi::routing {

class cooldowns {
public:
    using clock = std::chrono::steady_clock;

    // False when no target has a failure counted or a cool-down (the usual case): a load,
    // no lock, so that a request on a healthy gateway does not touch the shared map.
    bool any() const noexcept { return entries_.load(std::memory_order_relaxed) != 0; }
    // True while target is cooling down.
    bool cooling(const std::string& target, clock::time_point now = clock::now()) const;
    // When the target's cool-down ends (now when it is not cooling).
    clock::time_point until(const std::string& target, clock::time_point now = clock::now()) const;

    // Resets the target's failure count; a target neither cooling nor failing is forgotten.
    void on_success(const std::string& target);
    void on_success(const std::string& target, clock::time_point now);
    // A 429: cool down for retry_after when the upstream gave one, else for cooldown.
    void on_rate_limited(const std::string& target, std::chrono::milliseconds retry_after,
                         std::chrono::milliseconds cooldown, clock::time_point now = clock::now());
    // A failure (5xx, connect error, timeout): the threshold-th in a row starts a cool-down.
    void on_failure(const std::string& target, unsigned threshold,
                    std::chrono::milliseconds cooldown, clock::time_point now = clock::now());

private:
    struct entry {
        unsigned failures = 0;
        clock::time_point until{};
    };
    mutable std::mutex mu_;
    std::unordered_map<std::string, entry> targets_;
    std::atomic<std::size_t> entries_{0}; // targets_.size(), for any()
};

} // namespace michi::routing
