#include "michi/app/worker.hpp"

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
    : state_(state), shared_ledger_(redis_ledger_for(state, ioc_.get_executor())),
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

} // namespace michi
