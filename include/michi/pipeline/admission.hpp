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
// In steps: the key (admit_key), the body's facts (scanned from its bytes, else parsed), the
// plan (admit_route), the parse when a target of the plan needs it, the guards' request
// (admit_guard). A large body's steps run off the event loop (admit_large, large_body.hpp).
// What is admitted is written into `out` (a new one) where it lies: a plan is not moved
// from step to step.
result<void> admit(request_context& ctx, auth::authenticator& auth, admitted& out);

result<void> admit_key(request_context& ctx, auth::authenticator& auth);
result<void> admit_route(request_context& ctx, routing::dispatch_plan& plan);
// The guards' request for out.plan into out.guard_request.
result<void> admit_guard(request_context& ctx, admitted& out);
// Whether a target of the plan reads the parsed body (a count of tokens is the gateway's
// own, from the parse, unless the first target counts).
bool needs_parsed_body(const request_context& ctx, const routing::dispatch_plan& plan);

// A body parsed, checked, and its facts read from the parse (the client's model in
// facts.model).
struct parsed_body {
    nlohmann::json body; // in OpenAI form (another API's request translated)
    body_facts facts;
};
// The body's bytes parsed (depth at most `limit`) and checked: the full path. Pure: any thread.
result<parsed_body> parse_request_body(api_kind api, std::string_view bytes, unsigned limit);
// A plain request's facts read from its bytes (body_scan, passthrough_scan); nullopt when the
// full parse has to decide. Pure: any thread.
std::optional<body_facts> scan_request_body(api_kind api, std::string_view bytes, unsigned limit);
// What either found, into ctx.
void take_parsed_body(request_context& ctx, parsed_body&& p);
void take_scanned_body(request_context& ctx, body_facts&& facts);

// The ledger's answer: the hold and the x-ratelimit-* values into ctx, or the refusal
// (counted in the metrics).
result<void> take_admission(request_context& ctx, guard::admission&& answer,
                            const guard::rate_headers& headers, obs::metrics& metrics);

// The providers' view of the admitted request.
providers::request_view request_view_of(const request_context& ctx);

} // namespace michi::pipeline
