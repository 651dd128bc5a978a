#include "michi/routing/cooldowns.hpp"

namespace michi::routing {

bool cooldowns::cooling(const std::string& target, clock::time_point now) const {
    if (!any()) {
        return false;
    }
    std::lock_guard lock(mu_);
    const auto it = targets_.find(target);
    return it != targets_.end() && it->second.until > now;
}

cooldowns::clock::time_point cooldowns::until(const std::string& target,
                                              clock::time_point now) const {
    std::lock_guard lock(mu_);
    const auto it = targets_.find(target);
    return it != targets_.end() && it->second.until > now ? it->second.until : now;
}

void cooldowns::on_success(const std::string& target) {
    if (any()) {
        on_success(target, clock::now());
    }
}

void cooldowns::on_success(const std::string& target, clock::time_point now) {
    std::lock_guard lock(mu_);
    const auto it = targets_.find(target);
    if (it == targets_.end()) {
        return;
    }
    if (it->second.until <= now) {
        // Not cooling and no failure counted: the same as no entry at all.
        targets_.erase(it);
        entries_.store(targets_.size(), std::memory_order_relaxed);
    } else {
        it->second.failures = 0;
    }
}

void cooldowns::on_rate_limited(const std::string& target, std::chrono::milliseconds retry_after,
                                std::chrono::milliseconds cooldown, clock::time_point now) {
    std::lock_guard lock(mu_);
    auto& e = targets_[target];
    entries_.store(targets_.size(), std::memory_order_relaxed);
    e.failures = 0;
    e.until = std::max(e.until, now + (retry_after.count() > 0 ? retry_after : cooldown));
}

void cooldowns::on_failure(const std::string& target, unsigned threshold,
                           std::chrono::milliseconds cooldown, clock::time_point now) {
    std::lock_guard lock(mu_);
    auto& e = targets_[target];
    entries_.store(targets_.size(), std::memory_order_relaxed);
    if (++e.failures >= std::max(1u, threshold)) {
        e.failures = 0;
        e.until = std::max(e.until, now + cooldown);
    }
}

} // namespace michi::routing
