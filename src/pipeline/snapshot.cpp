#include "michi/pipeline/snapshot.hpp"

namespace michi::pipeline {

snapshot::snapshot(std::shared_ptr<const config::config> c) : cfg(std::move(c)), keys(*cfg) {}

result<std::shared_ptr<const snapshot>> snapshot::build(std::shared_ptr<const config::config> c,
                                                        routing::signal_board* signals) {
    auto s = std::make_shared<snapshot>(std::move(c));
    std::shared_ptr<ssl::context> shared_tls;
    for (const auto& [name, p] : s->cfg->providers) {
        auto b = providers::bind(p, shared_tls);
        if (!b) {
            return b.error();
        }
        s->providers.emplace(name, std::move(b.value()));
    }
    s->routes = routing::route_table(*s->cfg, s->providers, signals);
    return std::shared_ptr<const snapshot>(std::move(s));
}

} // namespace michi::pipeline
