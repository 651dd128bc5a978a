#include "michi/cache/response_cache.hpp"

#include "michi/core/secret.hpp"
#include "michi/redis/key_layout.hpp"
#include "michi/redis/redis_client.hpp"

#include <spdlog/spdlog.h>

namespace michi::cache {

response_cache::response_cache(memory_cache& memory, executor ex,
                               const std::optional<redis::redis_url>& shared,
                               std::size_t max_entry_bytes, wall_clock now)
    : memory_(memory), ex_(ex),
      max_entry_bytes_(std::min(max_entry_bytes, memory.max_entry_bytes())), now_(std::move(now)) {
    if (shared) {
        redis_ = std::make_unique<redis::redis_client>(ex, *shared, redis_lookup_timeout);
    }
}

response_cache::~response_cache() = default;

std::int64_t response_cache::now_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(now_().time_since_epoch()).count();
}

awaitable<std::shared_ptr<const cached_answer>> response_cache::find(const std::string& digest) {
    const auto now = now_ms();
    if (auto hit = memory_.get(digest, now)) {
        co_return hit;
    }
    if (!redis_) {
        co_return nullptr;
    }
    const std::vector<std::string> get{"GET", redis::cache_key(raw_to_hex(digest))};
    auto [ec, reply] = co_await redis_->call(redis::redis_command(get));
    if (ec || reply.type != redis::redis_value::kind::string) {
        if (ec) {
            spdlog::debug("response cache: Redis lookup failed: {}", redis_->last_error());
        }
        co_return nullptr;
    }
    auto answer = decode(reply.str);
    if (!answer || answer->expires_ms <= now) {
        co_return nullptr;
    }
    make_fields(*answer);
    auto shared = std::make_shared<const cached_answer>(std::move(*answer));
    memory_.put(digest, shared);
    co_return shared;
}

const request_key* response_cache::known_key(const std::string& text) const {
    const auto it = known_.find(text);
    return it == known_.end() ? nullptr : &it->second;
}

void response_cache::remember_key(const std::string& text, const request_key& key) {
    if (text.size() > max_known_text) {
        return;
    }
    if (known_.size() >= max_known_keys || known_bytes_ + text.size() > max_known_bytes) {
        known_.clear();
        known_bytes_ = 0;
    }
    if (known_.emplace(text, key).second) {
        known_bytes_ += text.size();
    }
}

void response_cache::keep(const std::string& digest, cached_answer a,
                          std::chrono::milliseconds ttl) {
    a.expires_ms = now_ms() + ttl.count();
    if (a.bytes() > max_entry_bytes_) {
        return;
    }
    make_fields(a);
    if (redis_) {
        net::co_spawn(ex_, store_shared(redis::cache_key(raw_to_hex(digest)), encode(a), ttl),
                      net::detached);
    }
    memory_.put(digest, std::make_shared<const cached_answer>(std::move(a)));
}

awaitable<void> response_cache::store_shared(std::string key, std::string bytes,
                                             std::chrono::milliseconds ttl) {
    redis::redis_command cmd;
    cmd.arg("SET").arg(key).arg(bytes).arg("PX").arg(static_cast<long long>(ttl.count()));
    cmd.slot = redis::redis_key_slot(key);
    auto [ec, reply] = co_await redis_->call(std::move(cmd));
    if (ec || reply.is_error()) {
        spdlog::debug("response cache: Redis store failed: {}",
                      ec ? redis_->last_error() : reply.str);
    }
}

void pending_fill::whole(unsigned status, std::string_view content_type, std::string_view body,
                         std::string_view model, std::uint64_t cost_nano) {
    if (done_ || status / 100 != 2 || body.size() > cache_.max_entry_bytes()) {
        return;
    }
    done_ = true;
    cached_answer a;
    a.status = status;
    a.content_type = content_type;
    a.model = model;
    a.body = body;
    a.cost_nano = cost_nano;
    cache_.keep(digest_, std::move(a), ttl_);
}

void pending_fill::record(std::string_view bytes) {
    if (oversized_ || done_) {
        return;
    }
    if (recorded_.size() + bytes.size() > cache_.max_entry_bytes()) {
        oversized_ = true;
        std::string().swap(recorded_);
        return;
    }
    recorded_.append(bytes);
}

void pending_fill::stream_ended(bool clean, std::string_view model, std::uint64_t cost_nano) {
    if (done_ || oversized_ || !clean) {
        done_ = true;
        return;
    }
    done_ = true;
    cached_answer a;
    a.stream = true;
    a.content_type = "text/event-stream";
    a.model = model;
    a.body = std::move(recorded_);
    a.cost_nano = cost_nano;
    cache_.keep(digest_, std::move(a), ttl_);
}

} // namespace michi::cache
