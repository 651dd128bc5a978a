#pragma once
// The exchange: tries each target of the dispatch plan in order (retries with backoff on one
// target, then the next; targets cooling down last), each try one upstream attempt whose
// answer is classified by the target's adapter (served, or falls back), and relays the first
// good answer to the client: a whole one, or a stream through the relay (commit point: the
// first complete upstream event). When every target failed, the client gets the last
// target's own error or a 502/504 listing the attempts.

#include "michi/downstream/client_io.hpp"
#include "michi/pipeline/deps.hpp"
#include "michi/pipeline/request_context.hpp"
#include "michi/routing/plan.hpp"

namespace michi::pipeline {

awaitable<void> run_exchange(deps& d, downstream::client_io& io, request_context& ctx,
                             routing::dispatch_plan& plan);

} // namespace michi::pipeline
