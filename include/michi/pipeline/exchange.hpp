#pragma once
// The candidate loop: tries each target of a dispatch plan in order, classifies the
// upstream answer, and relays the first good one to the client (commit point for
// streams: the first complete upstream event).

#include "michi/app/worker.hpp"
#include "michi/pipeline/request_context.hpp"
#include "michi/server/client_io.hpp"

#include <memory>
#include <vector>

namespace michi::pipeline {

// A candidate's model: one of the runtime's configured models, pointed at (the session keeps
// the runtime alive for the request), or one made for this request from the built-in table,
// held. Either way no copy of a configured model's strings per request.
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

struct candidate {
    model_ref model;
    const config::provider_config* provider = nullptr;
    const endpoint* ep = nullptr; // null for echo
};

struct dispatch_plan {
    std::vector<candidate> candidates;
    std::string route;                        // route name, empty for a direct model
    std::chrono::milliseconds attempt_timeout{0}; // 0: the provider's timeout
    unsigned retries = 0;
};

awaitable<void> run_exchange(worker& w, server::client_io& io, request_context& ctx,
                             const dispatch_plan& plan);

} // namespace michi::pipeline
