#include "michi/cache/memory_cache.hpp"

#include <algorithm>
#include <cstring>
#include <functional>

namespace michi::cache {
namespace {

// A shard per 4 MiB of the bound, from 1 to 16: a small cache is one exact LRU list.
std::size_t shard_count(std::size_t max_bytes) {
    return std::clamp<std::size_t>(max_bytes / (4u << 20), 1, 16);
}

// Bookkeeping per entry beyond its key and answer (list node, index slot, control block).
constexpr std::size_t entry_overhead = 128;

} // namespace

memory_cache::memory_cache(std::size_t max_bytes)
    : shard_limit_(max_bytes / shard_count(max_bytes)) {
    const std::size_t n = shard_count(max_bytes);
    for (std::size_t i = 0; i < n; ++i) {
        shards_.push_back(std::make_unique<shard>());
    }
}

memory_cache::~memory_cache() = default;

std::size_t memory_cache::key_hash::operator()(std::string_view key) const noexcept {
    if (key.size() == 32) {
        std::uint64_t h = 0;
        std::memcpy(&h, key.data(), sizeof h);
        return static_cast<std::size_t>(h);
    }
    return std::hash<std::string_view>{}(key);
}

memory_cache::shard& memory_cache::shard_of(std::string_view key) {
    // (Other bits than the index's: a shard's keys still spread over its buckets.)
    if (key.size() == 32) {
        std::uint64_t h = 0;
        std::memcpy(&h, key.data() + 8, sizeof h);
        return *shards_[h % shards_.size()];
    }
    return *shards_[std::hash<std::string_view>{}(key) % shards_.size()];
}

std::shared_ptr<const cached_answer> memory_cache::get(std::string_view key, std::int64_t now_ms) {
    shard& s = shard_of(key);
    std::lock_guard lock(s.mu);
    const auto it = s.index.find(key);
    if (it == s.index.end()) {
        return nullptr;
    }
    const auto node = it->second;
    if (node->answer->expires_ms <= now_ms) {
        s.bytes -= node->bytes;
        s.index.erase(it);
        s.lru.erase(node);
        return nullptr;
    }
    s.lru.splice(s.lru.begin(), s.lru, node);
    return node->answer;
}

void memory_cache::put(std::string key, std::shared_ptr<const cached_answer> answer) {
    const std::size_t bytes = key.size() + answer->bytes() + entry_overhead;
    if (bytes > shard_limit_) {
        return;
    }
    shard& s = shard_of(key);
    std::shared_ptr<const cached_answer> replaced; // released after the lock
    std::vector<std::shared_ptr<const cached_answer>> evicted;
    std::lock_guard lock(s.mu);
    if (const auto it = s.index.find(key); it != s.index.end()) {
        const auto node = it->second;
        s.bytes -= node->bytes;
        replaced = std::move(node->answer);
        s.index.erase(it);
        s.lru.erase(node);
    }
    while (s.bytes + bytes > shard_limit_ && !s.lru.empty()) {
        auto& last = s.lru.back();
        s.bytes -= last.bytes;
        evicted.push_back(std::move(last.answer));
        s.index.erase(last.key);
        s.lru.pop_back();
        ++s.evictions;
    }
    s.lru.push_front(entry{std::move(key), std::move(answer), bytes});
    s.index.emplace(s.lru.front().key, s.lru.begin());
    s.bytes += bytes;
}

memory_cache::figures memory_cache::stats() const {
    figures f;
    for (const auto& s : shards_) {
        std::lock_guard lock(s->mu);
        f.entries += s->lru.size();
        f.bytes += s->bytes;
        f.evictions += s->evictions;
    }
    f.hits = hits_.load(std::memory_order_relaxed);
    f.misses = misses_.load(std::memory_order_relaxed);
    f.saved_nano = saved_nano_.load(std::memory_order_relaxed);
    return f;
}

} // namespace michi::cache
