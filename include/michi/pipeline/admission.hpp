#pragma once
// Admission: a fixed list of checks, in order, each of which passes or refuses with the
// client's error: the key, the body, the model or route (and the key's allow-list), a price
// for a key with a budget. Synchronous and in memory; what it decides is a dispatch plan
// and the request to put to the ledger (budgets, RPM/TPM, loop guard), whose answer
// (take_admission) ends admission.

#include "michi/auth/authenticator.hpp"
#include "michi/core/result.hpp"
#include "michi/guard/ledger.hpp"
#include "michi/obs/metrics.hpp"
#include "michi/pipeline/request_context.hpp"
#include "michi/routing/plan.hpp"

namespace michi::pipeline {

struct admitted {
    routing::dispatch_plan plan;
    guard::admission_request guard_request;
};

// The checks before the ledger; ctx gets the key, the body's facts and the route reason.
result<admitted> admit(request_context& ctx, auth::authenticator& auth);

// The ledger's answer: the hold and the x-ratelimit-* values into ctx, or the refusal
// (counted in the metrics).
result<void> take_admission(request_context& ctx, guard::admission&& answer,
                            const guard::rate_headers& headers, obs::metrics& metrics);

// The providers' view of the admitted request.
providers::request_view request_view_of(const request_context& ctx);

} // namespace michi::pipeline
