#pragma once
// The response cache in this process's memory, shared by every worker: answers by request
// digest, bounded in bytes (the least recently used go first), each until it expires.
// Sharded, each shard under its own short lock (never held across I/O); a hit hands out a
// reference to the answer, not a copy.

#include "michi/cache/cached_answer.hpp"
#include "michi/core/adaptive_mutex.hpp"

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace michi::cache {

class memory_cache {
public:
    // max_bytes: what every entry together may take (keys, answers and bookkeeping).
    explicit memory_cache(std::size_t max_bytes);
    ~memory_cache();
    memory_cache(const memory_cache&) = delete;
    memory_cache& operator=(const memory_cache&) = delete;

    // The answer under key, unless it expired by now_ms (then it goes).
    std::shared_ptr<const cached_answer> get(std::string_view key, std::int64_t now_ms);
    // Keeps the answer under key (replacing one there), evicting the least recently used
    // until it fits; one larger than max_entry_bytes() is not kept.
    void put(std::string key, std::shared_ptr<const cached_answer> answer);

    // The largest entry that can be kept (a shard's share of max_bytes).
    std::size_t max_entry_bytes() const noexcept { return shard_limit_; }

    // A request the cache was asked for: a hit (saving what its answer cost when it was
    // fetched) or a miss. Counted for the admin API (atomics: no lock).
    void count(bool hit, std::uint64_t saved_nano) noexcept {
        (hit ? hits_ : misses_).fetch_add(1, std::memory_order_relaxed);
        saved_nano_.fetch_add(saved_nano, std::memory_order_relaxed);
    }

    struct figures {
        std::size_t entries = 0;
        std::size_t bytes = 0;
        std::uint64_t evictions = 0;
        std::uint64_t hits = 0;
        std::uint64_t misses = 0;
        std::uint64_t saved_nano = 0; // what the hits' answers cost when they were fetched
    };
    figures stats() const;

private:
    struct entry {
        std::string key;
        std::shared_ptr<const cached_answer> answer;
        std::size_t bytes = 0;
    };
    // A key's hash: a digest's (SHA-256, already uniform) first eight bytes as they are, any
    // other key's std::hash.
    struct key_hash {
        std::size_t operator()(std::string_view key) const noexcept;
    };
    struct shard {
        mutable adaptive_mutex mu; // (a few hundred instructions; never across I/O)
        std::list<entry> lru;      // most recently used first
        std::unordered_map<std::string_view, std::list<entry>::iterator, key_hash> index;
        std::size_t bytes = 0;
        std::uint64_t evictions = 0;
    };
    shard& shard_of(std::string_view key);

    std::vector<std::unique_ptr<shard>> shards_;
    std::size_t shard_limit_;
    std::atomic<std::uint64_t> hits_{0};
    std::atomic<std::uint64_t> misses_{0};
    std::atomic<std::uint64_t> saved_nano_{0};
};

} // namespace michi::cache
