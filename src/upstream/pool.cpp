#include "michi/upstream/pool.hpp"

#include <algorithm>

namespace michi::upstream {
namespace {
// A sweep runs this long after the oldest connection's expiry: the idle ages are read from
// the coarse clock, and a second's slack lets one sweep take several connections.
constexpr std::chrono::seconds sweep_slack{1};
} // namespace

std::unique_ptr<connection> pool::take(const std::string& key) {
    auto it = idle_.find(key);
    if (it == idle_.end()) {
        return nullptr;
    }
    auto& list = it->second;
    const auto now = coarse_now(); // idle ages are counted in seconds
    // Oldest at the front: drop the expired ones, then reuse the newest.
    while (!list.empty() && now - list.front()->idle_since > idle_expiry) {
        list.front()->close();
        list.pop_front();
    }
    if (list.empty()) {
        return nullptr;
    }
    auto c = std::move(list.back());
    list.pop_back();
    c->reused = true;
    return c;
}

void pool::put(std::unique_ptr<connection> c, std::size_t cap) {
    auto& list = idle_[c->pool_key()];
    if (list.size() >= cap) {
        c->close();
        return;
    }
    c->idle_since = coarse_now();
    c->expires_never();
    if (!sweep_timer_) {
        sweep_timer_ = std::make_unique<steady_timer>(c->lowest().get_executor());
    }
    const auto expires = c->idle_since + idle_expiry;
    list.push_back(std::move(c));
    if (!sweep_armed_) {
        arm(expires);
    }
}

void pool::arm(steady_clock::time_point at) {
    sweep_armed_ = true;
    sweep_timer_->expires_at(at + sweep_slack);
    sweep_timer_->async_wait([this, alive = std::weak_ptr<char>(alive_)](error_code ec) {
        if (alive.expired()) {
            return; // the pool is gone (its worker stopped)
        }
        sweep_armed_ = false;
        if (!ec) {
            sweep();
        }
    });
}

void pool::sweep() {
    const auto now = coarse_now();
    auto next = steady_clock::time_point::max();
    for (auto it = idle_.begin(); it != idle_.end();) {
        auto& list = it->second;
        while (!list.empty() && now - list.front()->idle_since >= idle_expiry) {
            list.front()->close();
            list.pop_front();
        }
        if (list.empty()) {
            it = idle_.erase(it);
            continue;
        }
        next = std::min(next, list.front()->idle_since + idle_expiry);
        ++it;
    }
    if (next != steady_clock::time_point::max()) {
        arm(next);
    }
}

std::size_t pool::idle_count() const {
    std::size_t n = 0;
    for (const auto& [key, list] : idle_) {
        n += list.size();
    }
    return n;
}

std::size_t pool::idle_count(const std::string& key) const {
    const auto it = idle_.find(key);
    return it == idle_.end() ? 0 : it->second.size();
}

} // namespace michi::upstream
