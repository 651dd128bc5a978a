#include "michi/upstream/pool.hpp"

namespace michi::upstream {

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
    list.push_back(std::move(c));
}

std::size_t pool::idle_count() const {
    std::size_t n = 0;
    for (const auto& [key, list] : idle_) {
        n += list.size();
    }
    return n;
}

} // namespace michi::upstream
