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

class target_signals;
struct prepared_route;

// A candidate's model: one of the snapshot's configured models, or one made from the price
// table and held by the route table or the plan (`held`), pointed at either way: no copy of
// a model's strings per request, and a candidate that moves as four words.
class model_ref {
public:
    static model_ref of(const config::model_config& m) { return model_ref(&m); }
    const config::model_config* operator->() const noexcept { return p_; }
    const config::model_config& operator*() const noexcept { return *p_; }

private:
    explicit model_ref(const config::model_config* p) : p_(p) {}
    const config::model_config* p_;
};

// One target: the model and its provider's binding (the snapshot's).
struct candidate {
    model_ref model;
    const providers::binding* provider = nullptr;
    double weight = 1; // its share of a weighted route's traffic
    // A route target's live signals (process-wide, outliving snapshots); null for a model
    // asked for by name, or when the snapshot was built without the board (looked up then).
    target_signals* signals = nullptr;
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
    // The snapshot's route it came from (its texts made once); null for a model or `auto`.
    const prepared_route* prepared = nullptr;
    // A model asked for by name that the price table made for this request (the candidate
    // points at it).
    std::shared_ptr<const config::model_config> held;
};

} // namespace michi::routing
