#include "michi/routing/route_table.hpp"

#include "michi/routing/strategies.hpp"

namespace michi::routing {

std::optional<model_ref> find_model(const config::config& cfg, const std::string& name,
                                    std::shared_ptr<const config::model_config>& held) {
    if (const auto it = cfg.models.find(name); it != cfg.models.end()) {
        return model_ref::of(it->second);
    }
    if (auto made = cfg.find_model(name)) {
        held = std::make_shared<const config::model_config>(std::move(*made));
        return model_ref::of(*held);
    }
    return std::nullopt;
}

candidate make_candidate(const provider_map& providers, model_ref m) {
    const auto it = providers.find(m->provider);
    return candidate{std::move(m), it == providers.end() ? nullptr : &it->second};
}

route_table::route_table(const config::config& cfg, const provider_map& providers,
                         signal_board* board)
    : board_(board) {
    for (const auto& [name, m] : cfg.models) {
        models_.emplace(name, make_candidate(providers, model_ref::of(m)));
    }
    for (const auto& [name, r] : cfg.routes) {
        prepared_route p;
        p.config = &r;
        for (std::size_t i = 0; i < r.targets.size(); ++i) {
            std::shared_ptr<const config::model_config> held;
            auto m = find_model(cfg, r.targets[i], held);
            if (!m) {
                continue;
            }
            if (held) {
                made_.push_back(std::move(held));
            }
            auto c = make_candidate(providers, std::move(*m));
            c.weight = i < r.weights.size() ? r.weights[i] : 1.0;
            c.signals = board != nullptr ? board->find(c.model->name) : nullptr;
            p.candidates.push_back(std::move(c));
        }
        double total = 0;
        for (const auto& c : p.candidates) {
            total += c.weight;
        }
        for (const auto& c : p.candidates) {
            switch (r.strategy) {
            case config::route_strategy::weighted:
                p.reasons.push_back(weighted_reason(c, total));
                break;
            case config::route_strategy::least_busy:
                p.reasons.push_back(reason_start(r.strategy, c));
                for (std::int64_t n = 0; n < prepared_route::busy_texts; ++n) {
                    p.busy_reasons.push_back(p.reasons.back() + busy_reason_end(n));
                }
                break;
            case config::route_strategy::latency:
                p.reasons.push_back(reason_start(r.strategy, c));
                break;
            default: break;
            }
        }
        routes_.emplace(name, std::move(p));
    }
}

const prepared_route* route_table::route(std::string_view name) const noexcept {
    const auto it = routes_.find(name);
    return it == routes_.end() ? nullptr : &it->second;
}

const candidate* route_table::model(std::string_view name) const noexcept {
    const auto it = models_.find(name);
    return it == models_.end() ? nullptr : &it->second;
}

} // namespace michi::routing
