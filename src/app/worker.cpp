#include "michi/app/worker.hpp"

#include <spdlog/spdlog.h>

namespace michi {
namespace {

std::unique_ptr<guard::redis_ledger> redis_ledger_for(shared_state& state, executor ex) {
    if (const auto& url = state.redis_url()) {
        return std::make_unique<guard::redis_ledger>(ex, *url, state.clock());
    }
    return nullptr;
}

// Redis for the response cache: store.redis unless cache.shared is off.
std::optional<redis::redis_url> cache_redis(shared_state& state) {
    if (!state.snapshot()->cfg->cache.shared) {
        return std::nullopt;
    }
    return state.redis_url();
}

guard::ledger& ledger_of(shared_state& state, guard::redis_ledger* shared) {
    if (shared != nullptr) {
        return *shared;
    }
    return state.ledger();
}

} // namespace

worker::worker(shared_state& state,
               std::function<result<void>(std::shared_ptr<const config::config>)> apply)
    : shared_ledger_(redis_ledger_for(state, ioc_.get_executor())),
      cache_(state.response_cache(), ioc_.get_executor(), cache_redis(state),
             state.snapshot()->cfg->cache.max_entry_bytes, state.clock()),
      auth_(state.key_registry()), api_{ioc_.get_executor(),
                                        ledger_of(state, shared_ledger_.get()),
                                        auth_,
                                        upstream_,
                                        state.cooldowns(),
                                        state.signals(),
                                        state.key_pools(),
                                        cache_,
                                        state.metrics(),
                                        state.request_log(),
                                        state.fallbacks(),
                                        state.blocking(),
                                        strings_,
                                        fields_,
                                        rng_,
                                        state.cpu(),
                                        hang_ups_},
      admin_{ioc_.get_executor(),  ledger_of(state, shared_ledger_.get()),
             state.key_registry(), state.request_log(),
             state.cooldowns(),    state.signals(),
             state.key_pools(),    state.response_cache(),
             state.fallbacks(),    state.metrics(),
             state.inflight,       state.blocking(),
             std::move(apply)},
      planes_{api_, admin_, state.ready, state.inflight.draining},
      connection_deps_{ioc_.get_executor(), planes_, state.snapshots(), state.inflight,
                       state.metrics()} {}

prewarm_round::prewarm_round(const config::config& cfg) {
    for (const auto& [name, p] : cfg.providers) {
        if (p.prewarm > 0) {
            logged_.try_emplace(name);
        }
    }
}

void prewarm_round::failed(const std::string& provider, const std::string& why) {
    const auto it = logged_.find(provider);
    if (it != logged_.end() && !it->second.exchange(true)) {
        spdlog::warn("provider {}: prewarm connections not opened: {} (they are opened on "
                     "demand)",
                     provider, why);
    }
}

void worker::prewarm(const pipeline::snapshot& rt, const std::shared_ptr<prewarm_round>& round) {
    for (const auto& [name, b] : rt.providers) {
        // (Not a provider that is off for want of its key: no request goes there.)
        if (b.endpoint && b.configured && b.config != nullptr && b.config->prewarm > 0) {
            warmer_.warm(
                *b.endpoint, b.config->prewarm, b.config->connect_timeout,
                b.config->max_connections,
                [round, provider = name](const std::string& why) { round->failed(provider, why); });
        }
    }
}

} // namespace michi
