#include "michi/admin/balance_api.hpp"

namespace michi::admin {
namespace {

using nlohmann::json;

json route_balance(const config::route_config& r, const balance_sources& s) {
    json targets = json::array();
    for (std::size_t i = 0; i < r.targets.size(); ++i) {
        const auto& name = r.targets[i];
        json t = {{"target", name}, {"cooling", s.cooldowns.cooling(name)}};
        if (r.strategy == config::route_strategy::weighted) {
            t["weight"] = i < r.weights.size() ? r.weights[i] : 1.0;
        }
        const auto* live = s.signals.peek(name);
        t["in_flight"] = live != nullptr ? live->in_flight() : 0;
        const auto ttfb = live != nullptr ? live->ttfb() : std::nullopt;
        t["ttfb_ms"] = ttfb ? json(static_cast<double>(ttfb->count()) / 1000.0) : json();
        t["samples"] = live != nullptr ? live->samples() : 0;
        targets.push_back(std::move(t));
    }
    json out = {{"name", r.name},
                {"strategy", config::to_string(r.strategy)},
                {"targets", std::move(targets)}};
    if (r.cache) {
        out["cache"] = {{"ttl_ms", r.cache->ttl.count()},
                        {"nondeterministic", r.cache->nondeterministic},
                        {"per_key", r.cache->per_key}};
    }
    return out;
}

} // namespace

json balance_json(const config::config& cfg, const balance_sources& s) {
    json routes = json::array();
    for (const auto& [name, r] : cfg.routes) {
        routes.push_back(route_balance(r, s));
    }
    json providers = json::array();
    const auto now = routing::key_pools::clock::now();
    for (const auto& [name, p] : cfg.providers) {
        json keys = json::array();
        for (const auto& k : s.key_pools.status(p, now)) {
            keys.push_back({{"index", k.index},
                            {"digest", k.digest},
                            {"cooling_ms", k.cooling.count()},
                            {"requests_last_minute", k.requests},
                            {"tokens_last_minute", k.tokens},
                            {"rpm", k.rpm ? json(*k.rpm) : json()},
                            {"tpm", k.tpm ? json(*k.tpm) : json()}});
        }
        if (!keys.empty()) {
            providers.push_back({{"name", name}, {"keys", std::move(keys)}});
        }
    }
    const auto f = s.cache.stats();
    json cache = {{"entries", f.entries},
                  {"bytes", f.bytes},
                  {"max_bytes", cfg.cache.max_bytes},
                  {"evictions", f.evictions},
                  {"hits", f.hits},
                  {"misses", f.misses},
                  {"saved_usd", static_cast<double>(f.saved_nano) / 1e9},
                  {"shared", cfg.cache.shared && !cfg.store.redis.empty()}};
    return {{"routes", std::move(routes)},
            {"providers", std::move(providers)},
            {"cache", std::move(cache)}};
}

} // namespace michi::admin
