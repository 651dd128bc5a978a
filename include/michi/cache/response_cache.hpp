#pragma once
// One worker's way to the response cache: the memory cache every worker of the process
// shares and, with store.redis (and cache.shared), Redis on the worker's own connection, so
// that replicas share answers. A lookup asks memory, then Redis (an answer found there is kept
// in memory too); keeping an answer writes memory at once and Redis in the background.
// Nothing here blocks the worker's event loop.

#include "michi/cache/cached_answer.hpp"
#include "michi/cache/memory_cache.hpp"
#include "michi/cache/request_key.hpp"
#include "michi/core/net.hpp"
#include "michi/redis/redis_url.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

namespace michi::redis {
class redis_client;
}

namespace michi::cache {

// How long a lookup waits for Redis before it counts as a miss.
inline constexpr std::chrono::milliseconds redis_lookup_timeout{500};
// The normalised keys a worker remembers by a request's exact text (response_cache::known_key):
// at most this many, of at most this many bytes together, none longer than max_known_text.
inline constexpr std::size_t max_known_keys = 1024;
inline constexpr std::size_t max_known_bytes = 512 * 1024;
inline constexpr std::size_t max_known_text = 32 * 1024;

class response_cache {
public:
    using wall_clock = std::function<std::chrono::system_clock::time_point()>;

    // shared: Redis's address, or nullopt for memory only. max_entry_bytes: a larger answer
    // is not kept.
    response_cache(memory_cache& memory, executor ex, const std::optional<redis::redis_url>& shared,
                   std::size_t max_entry_bytes, wall_clock now);
    ~response_cache();
    response_cache(const response_cache&) = delete;
    response_cache& operator=(const response_cache&) = delete;

    // The answer kept under digest (32 bytes), or null: none, expired, or Redis did not
    // answer in time.
    awaitable<std::shared_ptr<const cached_answer>> find(const std::string& digest);
    // The same in this process's memory only, without a suspension: what find answers first.
    std::shared_ptr<const cached_answer> find_here(const std::string& digest) {
        return memory_.get(digest, now_ms());
    }
    // Whether find asks Redis too when memory has nothing.
    bool shared() const noexcept { return redis_ != nullptr; }
    // Keeps the answer under digest for ttl.
    void keep(const std::string& digest, cached_answer a, std::chrono::milliseconds ttl);

    // The normalised key of a request seen before, by its exact text (exact_text: the body's
    // bytes and what else the key covers), so that a body sent again byte for byte is neither
    // parsed nor hashed again. This worker's own (no lock), within max_known_keys and
    // max_known_bytes (then it starts afresh).
    const request_key* known_key(const std::string& text) const;
    void remember_key(const std::string& text, const request_key& key);

    // The largest answer kept (config and memory bound).
    std::size_t max_entry_bytes() const noexcept { return max_entry_bytes_; }
    std::int64_t now_ms() const;
    memory_cache& memory() noexcept { return memory_; }

private:
    awaitable<void> store_shared(std::string key, std::string bytes, std::chrono::milliseconds ttl);

    memory_cache& memory_;
    executor ex_;
    std::unique_ptr<redis::redis_client> redis_; // null: memory only
    std::size_t max_entry_bytes_;
    wall_clock now_;
    std::unordered_map<std::string, request_key> known_;
    std::size_t known_bytes_ = 0;
};

// An answer on its way to the cache (a miss that is kept if it completes well): a whole
// answer with its status and type, or a stream's bytes as the client got them.
class pending_fill {
public:
    pending_fill(response_cache& cache, std::string digest, std::chrono::milliseconds ttl)
        : cache_(cache), digest_(std::move(digest)), ttl_(ttl) {}

    // A whole answer: kept when its status is 2xx and it is not too large.
    void whole(unsigned status, std::string_view content_type, std::string_view body,
               std::string_view model, std::uint64_t cost_nano);
    // A stream starts (again, after one that failed before its first event): nothing
    // recorded yet.
    void restart() {
        recorded_.clear();
        oversized_ = false;
    }
    // The next bytes of a stream's body, as written to the client.
    void record(std::string_view bytes);
    // The stream ended; it is kept when it ended cleanly and was not too large.
    void stream_ended(bool clean, std::string_view model, std::uint64_t cost_nano);

private:
    response_cache& cache_;
    std::string digest_;
    std::chrono::milliseconds ttl_;
    std::string recorded_;
    bool oversized_ = false;
    bool done_ = false;
};

} // namespace michi::cache
