#include "michi/routing/key_pools.hpp"

#include "michi/core/secret.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <limits>

namespace michi::routing {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

constexpr std::size_t window_seconds = 60;

std::int64_t second_of(key_pools::clock::time_point t) {
    return duration_cast<seconds>(t.time_since_epoch()).count();
}
std::int64_t ns_of(key_pools::clock::time_point t) {
    return duration_cast<nanoseconds>(t.time_since_epoch()).count();
}

// What one key sent in one second.
struct bucket {
    std::atomic<std::int64_t> second{-1};
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> tokens{0};
};

} // namespace

// One key's state: atomics every worker updates; it follows the key across reloads.
struct key_state {
    std::string fingerprint;               // the key's SHA-256 (hex)
    std::atomic<std::int64_t> until_ns{0}; // cooling down until (clock's epoch)
    std::array<bucket, window_seconds> window{};

    bool cooling(key_pools::clock::time_point now) const noexcept {
        return until_ns.load(std::memory_order_relaxed) > ns_of(now);
    }
    std::pair<std::uint64_t, std::uint64_t> used(std::int64_t now_s) const noexcept {
        std::uint64_t requests = 0;
        std::uint64_t tokens = 0;
        for (const auto& b : window) {
            if (b.second.load(std::memory_order_relaxed) >
                now_s - static_cast<std::int64_t>(window_seconds)) {
                requests += b.requests.load(std::memory_order_relaxed);
                tokens += b.tokens.load(std::memory_order_relaxed);
            }
        }
        return {requests, tokens};
    }
    void count(std::int64_t now_s, std::uint64_t tokens) noexcept {
        auto& b = window[static_cast<std::size_t>(now_s) % window_seconds];
        auto s = b.second.load(std::memory_order_relaxed);
        if (s != now_s && b.second.compare_exchange_strong(s, now_s, std::memory_order_relaxed)) {
            b.requests.store(0, std::memory_order_relaxed); // a second a minute old: reused
            b.tokens.store(0, std::memory_order_relaxed);
        }
        b.requests.fetch_add(1, std::memory_order_relaxed);
        b.tokens.fetch_add(tokens, std::memory_order_relaxed);
    }
};

struct key_pools::pool {
    const config::provider_config* config = nullptr; // the config it was made for
    std::vector<std::shared_ptr<key_state>> keys;
    std::atomic<std::size_t> next{0}; // whose turn it is
};

namespace {

// Whether the key may take a request of `tokens` now.
bool available(const key_state& k, const config::provider_key& limits,
               key_pools::clock::time_point now, std::uint64_t tokens) {
    if (k.cooling(now)) {
        return false;
    }
    if (!limits.rpm && !limits.tpm) {
        return true;
    }
    const auto [requests, used_tokens] = k.used(second_of(now));
    return (!limits.rpm || requests + 1 <= *limits.rpm) &&
           (!limits.tpm || used_tokens + tokens <= *limits.tpm);
}

// Each worker's view of the published pools: no lock unless they changed.
thread_local published<key_pools::table>::reader reader;

} // namespace

key_pools::key_pools() : pools_(std::make_shared<const table>()) {}
key_pools::~key_pools() = default;

bool key_pools::pooled(const config::provider_config& p) noexcept {
    return p.api_keys.size() > 1 ||
           (p.api_keys.size() == 1 && (p.api_keys[0].rpm || p.api_keys[0].tpm));
}

std::string key_pools::name_of(const config::provider_config& p, std::size_t index) {
    const std::string digest =
        index < p.api_keys.size() ? sha256_hex(p.api_keys[index].key.reveal()).substr(0, 8) : "";
    return "#" + std::to_string(index) + " " + digest;
}

void key_pools::configure(const config::config& cfg) {
    const auto old = pools_.get();
    auto next = std::make_shared<table>();
    for (const auto& [name, p] : cfg.providers) {
        if (!pooled(p)) {
            continue;
        }
        auto pl = std::make_shared<pool>();
        pl->config = &p;
        for (const auto& k : p.api_keys) {
            auto fingerprint = sha256_hex(k.key.reveal());
            std::shared_ptr<key_state> state;
            if (const auto was = old->find(name); was != old->end()) {
                for (const auto& s : was->second->keys) {
                    if (s->fingerprint == fingerprint) {
                        state = s; // its cool-down and minute carry on
                    }
                }
            }
            if (!state) {
                state = std::make_shared<key_state>();
                state->fingerprint = std::move(fingerprint);
            }
            pl->keys.push_back(std::move(state));
        }
        next->emplace(name, std::move(pl));
    }
    pools_.set(std::move(next));
}

key_pools::pool* key_pools::pool_for(const config::provider_config& p) {
    const auto& t = reader.get(pools_);
    const auto it = t->find(p.name);
    if (it == t->end() || it->second->config != &p) {
        return nullptr;
    }
    return it->second.get();
}

std::optional<std::size_t> key_pools::acquire(const config::provider_config& p,
                                              std::uint64_t tokens, clock::time_point now,
                                              std::string& why) {
    if (!pooled(p)) {
        return 0;
    }
    pool* pl = pool_for(p);
    if (pl == nullptr) { // a config not (or no longer) current: in turn, nothing counted
        static std::atomic<std::size_t> turn{0};
        return turn.fetch_add(1, std::memory_order_relaxed) % p.api_keys.size();
    }
    const std::size_t n = pl->keys.size();
    const std::size_t start = pl->next.fetch_add(1, std::memory_order_relaxed);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t k = (start + i) % n;
        if (available(*pl->keys[k], p.api_keys[k], now, tokens)) {
            pl->keys[k]->count(second_of(now), tokens);
            return k;
        }
    }
    why = "every key of provider " + p.name + " is cooling down or at its rpm/tpm";
    return std::nullopt;
}

bool key_pools::on_rate_limited(const config::provider_config& p, std::size_t index,
                                milliseconds retry_after, milliseconds cooldown,
                                clock::time_point now) {
    pool* pl = pooled(p) ? pool_for(p) : nullptr;
    if (pl == nullptr || index >= pl->keys.size()) {
        return false;
    }
    const auto until = ns_of(now + (retry_after.count() > 0 ? retry_after : cooldown));
    auto& cell = pl->keys[index]->until_ns;
    auto was = cell.load(std::memory_order_relaxed);
    while (was < until && !cell.compare_exchange_weak(was, until, std::memory_order_relaxed)) {}
    for (std::size_t k = 0; k < pl->keys.size(); ++k) {
        if (available(*pl->keys[k], p.api_keys[k], now, 0)) {
            return true;
        }
    }
    return false;
}

key_pools::clock::time_point key_pools::soonest_back(const config::provider_config& p,
                                                     clock::time_point now) {
    pool* pl = pooled(p) ? pool_for(p) : nullptr;
    if (pl == nullptr) {
        return now;
    }
    std::int64_t soonest = std::numeric_limits<std::int64_t>::max();
    for (const auto& k : pl->keys) {
        soonest =
            std::min(soonest, std::max(k->until_ns.load(std::memory_order_relaxed), ns_of(now)));
    }
    return clock::time_point(duration_cast<clock::duration>(nanoseconds(soonest)));
}

std::vector<key_status> key_pools::status(const config::provider_config& p, clock::time_point now) {
    std::vector<key_status> out;
    pool* pl = pooled(p) ? pool_for(p) : nullptr;
    if (pl == nullptr) {
        return out;
    }
    for (std::size_t i = 0; i < pl->keys.size(); ++i) {
        const auto& k = *pl->keys[i];
        key_status s;
        s.index = i;
        s.digest = k.fingerprint.substr(0, 8);
        const auto left = k.until_ns.load(std::memory_order_relaxed) - ns_of(now);
        s.cooling = left > 0 ? duration_cast<milliseconds>(nanoseconds(left)) : milliseconds{0};
        std::tie(s.requests, s.tokens) = k.used(second_of(now));
        s.rpm = p.api_keys[i].rpm;
        s.tpm = p.api_keys[i].tpm;
        out.push_back(std::move(s));
    }
    return out;
}

} // namespace michi::routing
