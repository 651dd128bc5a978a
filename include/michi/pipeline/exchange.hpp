#pragma once
// The candidate loop: tries each target of a dispatch plan in order, classifies the
// upstream answer, and relays the first good one to the client (commit point for
// streams: the first complete upstream event).

#include "michi/app/worker.hpp"
#include "michi/pipeline/request_context.hpp"
#include "michi/server/client_io.hpp"

#include <vector>

namespace michi::pipeline {

struct candidate {
    config::model_config model;
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
