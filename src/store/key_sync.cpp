#include "michi/store/key_sync.hpp"

#include "michi/redis/key_layout.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <memory>
#include <string>
#include <vector>

namespace michi::store {
namespace {

using redis::keys_hash;
using redis::revoked_set;
constexpr const char* version_key = redis::keys_version;
constexpr std::chrono::milliseconds io_timeout{2000};

// A revocation as shared: the set the replicas read their keys from, and the mark in the
// key's ledger state that the shared ledger's admissions check (redis::revoked_field).
void add_revocation(std::vector<std::vector<std::string>>& cmds, const std::string& id) {
    cmds.push_back({"SADD", revoked_set, id});
    cmds.push_back({"HSET", redis::state_key(id), redis::revoked_field, "1"});
}

} // namespace

key_sync::key_sync(key_registry& registry, std::optional<redis_url> redis,
                   std::chrono::milliseconds every)
    : registry_(registry), redis_(std::move(redis)), every_(every) {
    // spdlog's registry is made on first use; made here, before the thread, its first use
    // is never a race between this thread and a worker's (that TSan cannot see through).
    spdlog::default_logger_raw();
    if (redis_) {
        registry_.share([this] {
            std::lock_guard lock(mu_);
            woken_ = true;
            cv_.notify_one();
        });
    }
    thread_ = std::thread([this] { run(); });
}

key_sync::~key_sync() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
    if (redis_) {
        // The changes still queued go now, or are lost with a warning (they are in SQLite).
        round_with_redis();
        if (const auto left = registry_.take_outbox(); !left.empty()) {
            spdlog::warn("key sync: {} key change(s) not sent to Redis at {} before stopping",
                         left.size(), redis_->where());
        }
        registry_.share({});
    }
}

void key_sync::run() {
    std::unique_lock lock(mu_);
    while (!stop_) {
        lock.unlock();
        registry_.refresh();
        if (redis_) {
            round_with_redis();
        }
        lock.lock();
        cv_.wait_for(lock, every_, [this] { return stop_ || woken_; });
        woken_ = false;
    }
}

void key_sync::round_with_redis() {
    if (!client_) {
        client_ = std::make_unique<redis_blocking_client>(*redis_, io_timeout);
    }
    with_redis();
}

bool key_sync::pipeline(const std::vector<std::vector<std::string>>& cmds) {
    if (cmds.empty()) {
        return true;
    }
    for (auto& [ec, r] : client_->run(cmds)) {
        if (ec || r.is_error()) {
            drop(ec ? client_->last_error() : r.str);
            return false;
        }
    }
    return true;
}

void key_sync::drop(const std::string& why) {
    if (!failing_) {
        spdlog::warn("key sync: Redis at {}: {}; admin key changes are shared again once it "
                     "answers",
                     redis_->where(), why);
        failing_ = true;
    }
    // The next round that reaches Redis may find one that restarted empty and counts from 0
    // again: it sends what this replica has, and reads everyone's back whatever the counter.
    sent_existing_ = false;
    seen_version_.reset();
}

void key_sync::with_redis() {
    std::string why;
    // What this replica had before it shared anything: added where Redis has nothing.
    if (!sent_existing_) {
        const auto snap = registry_.current();
        std::vector<std::vector<std::string>> cmds;
        for (const auto& k : snap->keys) {
            cmds.push_back({"HSETNX", keys_hash, k.id, key_to_json(k)});
        }
        for (const auto& id : snap->revoked) {
            add_revocation(cmds, id);
        }
        if (!pipeline(cmds) || (!cmds.empty() && !pipeline({{"INCR", std::string(version_key)}}))) {
            return;
        }
        sent_existing_ = true;
    }
    // This replica's changes since; the counter moves once they are in (in a cluster they
    // may be on other nodes than the counter: never announced before they are there).
    if (auto changes = registry_.take_outbox(); !changes.empty()) {
        std::vector<std::vector<std::string>> cmds;
        for (const auto& c : changes) {
            if (c.json.empty()) {
                add_revocation(cmds, c.id);
            } else {
                cmds.push_back({"HSET", keys_hash, c.id, c.json});
            }
        }
        if (!pipeline(cmds) || !pipeline({{"INCR", std::string(version_key)}})) {
            registry_.put_back(std::move(changes));
            return;
        }
    }
    // Everyone's, when the counter moved (read first: what is read after it is at least as
    // new as what it counts).
    auto [vec, v] = client_->call({"GET", version_key});
    if (vec || v.is_error()) {
        drop(vec ? client_->last_error() : v.str);
        return;
    }
    long long version = 0;
    if (v.type == redis_value::kind::string) {
        std::from_chars(v.str.data(), v.str.data() + v.str.size(), version);
    }
    if (seen_version_ != version) {
        auto both = client_->run(std::vector<std::vector<std::string>>{{"HGETALL", keys_hash},
                                                                       {"SMEMBERS", revoked_set}});
        auto& [kec, keys] = both[0];
        auto& [rec, revoked] = both[1];
        if (kec || rec || keys.type != redis_value::kind::array ||
            revoked.type != redis_value::kind::array) {
            drop(kec || rec ? client_->last_error() : "unexpected reply");
            return;
        }
        std::vector<admin_key> shared;
        for (std::size_t i = 0; i + 1 < keys.elements.size(); i += 2) {
            const std::string& id = keys.elements[i].str;
            if (auto k = key_from_json(id, keys.elements[i + 1].str, why)) {
                shared.push_back(std::move(*k));
            } else {
                spdlog::error("key sync: skipping key \"{}\" from Redis: {}", id, why);
            }
        }
        std::unordered_set<std::string> gone;
        for (const auto& r : revoked.elements) {
            gone.insert(r.str);
        }
        if (registry_.merge_shared(shared, gone)) {
            spdlog::info("key sync: admin keys and revocations updated from Redis");
        }
        seen_version_ = version;
    }
    if (failing_) {
        spdlog::info("key sync: Redis at {} answers again", redis_->where());
        failing_ = false;
    }
}

} // namespace michi::store
