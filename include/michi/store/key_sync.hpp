#pragma once
// Keeps a replica's admin-made keys and revocations in step with the other replicas'.
//
// One thread, woken every `every` and at once when this replica changes a key:
// - replicas that share the SQLite file: reloads the keys when the file's key version moved
//   (key_registry::refresh);
// - with store.redis: sends this replica's changes to Redis (the hash "michi:keys", key id
//   -> the key as JSON; the set "michi:revoked"; the counter "michi:keys:version" bumped
//   after each), and when the counter moved, reads the hash and the set back and stores them
//   (key_registry::merge_shared). On its first connection it sends the keys and revocations
//   it already had (a key Redis already holds is left as Redis has it).
// A Redis client of its own, on this thread (every connection mode the workers have, with
// timeouts): never on a worker's event loop. In a Redis Cluster the three names sit on slots
// of their own; no command touches two of them, and the counter is bumped only once the
// changes it announces were acknowledged.

#include "michi/store/key_registry.hpp"
#include "michi/redis/redis_blocking_client.hpp"
#include "michi/redis/redis_url.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace michi::store {

using redis::redis_blocking_client;
using redis::redis_url;
using redis::redis_value;

class key_sync {
public:
    static constexpr auto default_every = std::chrono::milliseconds(200);

    key_sync(key_registry& registry, std::optional<redis_url> redis,
             std::chrono::milliseconds every = default_every);
    ~key_sync();
    key_sync(const key_sync&) = delete;
    key_sync& operator=(const key_sync&) = delete;

private:
    void run();
    // Connects when not connected, then one round with Redis.
    void round_with_redis();
    // One round with Redis (a failed connection is dropped and tried again next round).
    void with_redis();
    // Runs the commands; false (and the failure logged once) when one failed.
    bool pipeline(const std::vector<std::vector<std::string>>& cmds);
    void drop(const std::string& why);

    key_registry& registry_;
    std::optional<redis_url> redis_;
    std::chrono::milliseconds every_;

    std::unique_ptr<redis_blocking_client> client_;
    bool sent_existing_ = false;
    std::optional<long long> seen_version_;
    bool failing_ = false; // a failure was logged; the next success says so

    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    bool woken_ = false;
    std::thread thread_;
};

} // namespace michi::store
