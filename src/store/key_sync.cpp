#include "michi/store/key_sync.hpp"

#include "michi/guard/redis_ledger.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <vector>

namespace michi::store {
namespace {

constexpr const char* keys_hash = "michi:keys";
constexpr const char* revoked_set = "michi:revoked";
constexpr const char* version_key = "michi:keys:version";
constexpr timeval io_timeout{2, 0};

using reply_ptr = std::unique_ptr<redisReply, void (*)(void*)>;

// A revocation as shared: the set the replicas read their keys from, and the mark in the
// key's ledger state that the shared ledger's admissions check (guard::revoked_field).
void add_revocation(std::vector<std::vector<std::string>>& cmds, const std::string& id) {
    cmds.push_back({"SADD", revoked_set, id});
    cmds.push_back({"HSET", guard::redis_state_key(id), guard::revoked_field, "1"});
}

// Queues one command on the connection's output; false when the connection failed.
bool append(redisContext* ctx, const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    return redisAppendCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(),
                                  lens.data()) == REDIS_OK;
}

// One command; null when the connection failed (ctx->errstr says why).
reply_ptr command(redisContext* ctx, const std::vector<std::string>& args) {
    void* raw = nullptr;
    if (!append(ctx, args) || redisGetReply(ctx, &raw) != REDIS_OK) {
        return reply_ptr(nullptr, freeReplyObject);
    }
    return reply_ptr(static_cast<redisReply*>(raw), freeReplyObject);
}

// Several commands sent at once, then their replies read; false (why set) on a failed
// connection or an error reply.
bool pipeline(redisContext* ctx, const std::vector<std::vector<std::string>>& cmds,
              std::string& why) {
    for (const auto& args : cmds) {
        if (!append(ctx, args)) {
            why = ctx->errstr;
            return false;
        }
    }
    bool ok = true;
    for (std::size_t i = 0; i < cmds.size(); ++i) {
        void* raw = nullptr;
        if (redisGetReply(ctx, &raw) != REDIS_OK) {
            why = ctx->errstr;
            return false;
        }
        reply_ptr r(static_cast<redisReply*>(raw), freeReplyObject);
        if (r->type == REDIS_REPLY_ERROR && ok) {
            why = std::string(r->str, r->len);
            ok = false;
        }
    }
    return ok;
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
    if (ctx_ != nullptr) {
        redisFree(ctx_);
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
    if (ctx_ != nullptr || connect()) {
        with_redis();
    }
}

bool key_sync::connect() {
    const timeval connect_timeout{1, 0};
    ctx_ = redisConnectWithTimeout(redis_->host.c_str(), redis_->port, connect_timeout);
    if (ctx_ == nullptr || ctx_->err != 0) {
        drop(ctx_ != nullptr ? ctx_->errstr : "cannot allocate a connection");
        return false;
    }
    redisSetTimeout(ctx_, io_timeout);
    std::vector<std::vector<std::string>> hello;
    if (!redis_->password.empty()) {
        if (redis_->username.empty()) {
            hello.push_back({"AUTH", redis_->password});
        } else {
            hello.push_back({"AUTH", redis_->username, redis_->password});
        }
    }
    if (redis_->db != 0) {
        hello.push_back({"SELECT", std::to_string(redis_->db)});
    }
    std::string why;
    if (!hello.empty() && !pipeline(ctx_, hello, why)) {
        drop(why);
        return false;
    }
    // A new connection may be to a Redis that restarted empty and counts from 0 again: send
    // what this replica has, and read everyone's back once whatever the counter says.
    sent_existing_ = false;
    seen_version_.reset();
    return true;
}

void key_sync::drop(const std::string& why) {
    if (!failing_) {
        spdlog::warn("key sync: Redis at {}: {}; admin key changes are shared again once it "
                     "answers",
                     redis_->where(), why);
        failing_ = true;
    }
    if (ctx_ != nullptr) {
        redisFree(ctx_);
        ctx_ = nullptr;
    }
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
        if (!cmds.empty()) {
            cmds.push_back({"INCR", version_key});
        }
        if (!pipeline(ctx_, cmds, why)) {
            drop(why);
            return;
        }
        sent_existing_ = true;
    }
    // This replica's changes since.
    if (auto changes = registry_.take_outbox(); !changes.empty()) {
        std::vector<std::vector<std::string>> cmds;
        for (const auto& c : changes) {
            if (c.json.empty()) {
                add_revocation(cmds, c.id);
            } else {
                cmds.push_back({"HSET", keys_hash, c.id, c.json});
            }
        }
        cmds.push_back({"INCR", version_key});
        if (!pipeline(ctx_, cmds, why)) {
            registry_.put_back(std::move(changes));
            drop(why);
            return;
        }
    }
    // Everyone's, when the counter moved.
    const auto v = command(ctx_, {"GET", version_key});
    if (!v || v->type == REDIS_REPLY_ERROR) {
        drop(v ? std::string(v->str, v->len) : std::string(ctx_->errstr));
        return;
    }
    const long long version = v->type == REDIS_REPLY_STRING ? std::atoll(v->str) : 0;
    if (seen_version_ != version) {
        const auto keys = command(ctx_, {"HGETALL", keys_hash});
        const auto revoked = command(ctx_, {"SMEMBERS", revoked_set});
        if (!keys || !revoked || keys->type != REDIS_REPLY_ARRAY ||
            revoked->type != REDIS_REPLY_ARRAY) {
            drop(ctx_->err != 0 ? std::string(ctx_->errstr) : "unexpected reply");
            return;
        }
        std::vector<admin_key> shared;
        for (std::size_t i = 0; i + 1 < keys->elements; i += 2) {
            const std::string id(keys->element[i]->str, keys->element[i]->len);
            const std::string_view text(keys->element[i + 1]->str, keys->element[i + 1]->len);
            if (auto k = key_from_json(id, text, why)) {
                shared.push_back(std::move(*k));
            } else {
                spdlog::error("key sync: skipping key \"{}\" from Redis: {}", id, why);
            }
        }
        std::unordered_set<std::string> gone;
        for (std::size_t i = 0; i < revoked->elements; ++i) {
            gone.emplace(revoked->element[i]->str, revoked->element[i]->len);
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
