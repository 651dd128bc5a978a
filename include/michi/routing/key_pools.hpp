#pragma once
// Provider key pools, shared by every worker: a provider's requests are spread over its
// `api_keys` in turn; a key that answered 429 cools down on its own (for its retry-after,
// else `cooldown`) while the others carry on; a key's `rpm`/`tpm` (the upstream's own limits
// on it) are counted over the last minute, so Michi moves to another key, or the next target,
// before the upstream refuses. A provider with one key and no limits is not pooled: its key
// goes out and nothing is counted.
//
// The pools are made when a config becomes current (configure(), off the request path), each
// key keeping its state across reloads (found by its digest); on the request path a key's
// state is atomics only: no lock. Counts are exact for one worker and may overshoot a limit
// by the requests other workers start in the same instant.
//
// Keys are named by their index and the first 8 hex digits of their SHA-256 (`#1 3fa2b9c1`),
// never by their value.

#include "michi/config/config.hpp"
#include "michi/core/published.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace michi::routing {

// A pool key's state as the admin API shows it.
struct key_status {
    std::size_t index = 0;
    std::string digest;                   // first 8 hex digits of the key's SHA-256
    std::chrono::milliseconds cooling{0}; // left of its cool-down (0: none)
    std::uint64_t requests = 0;           // sent in the last minute
    std::uint64_t tokens = 0;             // estimated, in the last minute
    std::optional<std::uint64_t> rpm;
    std::optional<std::uint64_t> tpm;
};

class key_pools {
public:
    using clock = std::chrono::steady_clock;

    key_pools();
    ~key_pools();
    key_pools(const key_pools&) = delete;
    key_pools& operator=(const key_pools&) = delete;

    // Whether the provider's keys are pooled: more than one, or limits on one.
    static bool pooled(const config::provider_config& p) noexcept;

    // The pools of a config that becomes current (at start and on each reload; one thread at
    // a time). Requests still on the previous config find their provider's pool by name.
    void configure(const config::config& cfg);

    // The key for one attempt that sends `tokens` (the request's estimate: prompt and
    // max_tokens, as providers count it), counted against its minute: the next in turn that
    // is neither cooling down nor at its rpm/tpm. Nullopt when there is none (the target
    // counts as failed for this request); `why` then says so. A provider not pooled: key 0.
    std::optional<std::size_t> acquire(const config::provider_config& p, std::uint64_t tokens,
                                       clock::time_point now, std::string& why);
    // The key answered 429: it cools down for retry_after (else cooldown). True when another
    // key of the provider could take a request now.
    bool on_rate_limited(const config::provider_config& p, std::size_t index,
                         std::chrono::milliseconds retry_after, std::chrono::milliseconds cooldown,
                         clock::time_point now);
    // When the provider's first cooling key is back (now when one is not cooling).
    clock::time_point soonest_back(const config::provider_config& p, clock::time_point now);
    // Every key of the provider, for the admin API (empty when not pooled).
    std::vector<key_status> status(const config::provider_config& p, clock::time_point now);
    // "#1 3fa2b9c1": how logs name a key.
    static std::string name_of(const config::provider_config& p, std::size_t index);

    struct pool;
    using table = std::unordered_map<std::string, std::shared_ptr<pool>>; // by provider name

private:
    // The provider's pool, null when it has none (or the config changed its keys since).
    pool* pool_for(const config::provider_config& p);

    published<table> pools_;
};

} // namespace michi::routing
