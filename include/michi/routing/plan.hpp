#pragma once
// What the router decides for one request: the ordered targets (primary first, then the
// fallbacks), with the route's timeout and retries.

#include "michi/config/config.hpp"
#include "michi/providers/adapter.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace michi::routing {

// A candidate's model: one of the snapshot's configured models, pointed at (the request
// keeps its snapshot alive), or one made for this request from the price table, held. Either
// way no copy of a configured model's strings per request.
class model_ref {
public:
    static model_ref configured(const config::model_config& m) { return model_ref(nullptr, &m); }
    static model_ref made(config::model_config m) {
        auto held = std::make_shared<const config::model_config>(std::move(m));
        const auto* p = held.get();
        return model_ref(std::move(held), p);
    }
    const config::model_config* operator->() const noexcept { return p_; }
    const config::model_config& operator*() const noexcept { return *p_; }

private:
    model_ref(std::shared_ptr<const config::model_config> made, const config::model_config* p)
        : made_(std::move(made)), p_(p) {}
    std::shared_ptr<const config::model_config> made_; // the made one (stays put as this moves)
    const config::model_config* p_;
};

// One target: the model and its provider's binding (the snapshot's).
struct candidate {
    model_ref model;
    const providers::binding* provider = nullptr;
    double weight = 1; // its share of a weighted route's traffic
};

struct dispatch_plan {
    std::vector<candidate> candidates;
    std::string route;                            // route name, empty for a direct model
    std::chrono::milliseconds attempt_timeout{0}; // 0: the provider's timeout
    unsigned retries = 0;
    std::string reason; // x-michi-route-reason, when a strategy chose the order
    // How the exchange orders the candidates (weighted, least_busy, latency: per request,
    // from the live signals; cheapest and fallback: as they are).
    config::route_strategy strategy = config::route_strategy::fallback;
};

} // namespace michi::routing
