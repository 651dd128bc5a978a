#pragma once
// What one API request carries through the pipeline. Each stage adds to it:
//   session   -> request id, arrival time, the parsed HTTP request, path (downstream::call)
//   admission -> the snapshot, the API called, the key, the body's facts (and its parse when
//                a target needs it), the dispatch plan's route reason, the ledger's hold and
//                the x-ratelimit-* values
//   cache     -> a hit answers here; a miss arranges for the answer to be kept
//   exchange  -> attempts, fallbacks, served model, time to first byte, the commit point,
//                usage and cost
//   settle    -> the hold settled to the actual cost; the request log and recent fallbacks
// The access-log line and the metrics (the session) read the call's log entry.

#include "michi/auth/authenticator.hpp"
#include "michi/cache/response_cache.hpp"
#include "michi/core/api.hpp"
#include "michi/core/usage.hpp"
#include "michi/downstream/call.hpp"
#include "michi/guard/ledger.hpp"
#include "michi/pipeline/body_scan.hpp"
#include "michi/pipeline/snapshot.hpp"
#include "michi/routing/strategies.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace michi::pipeline {

struct request_context : downstream::call {
    const snapshot* rt = nullptr; // the session's snapshot, kept alive by it for the request
    api_kind api = api_kind::chat;
    auth::identity who;
    const config::key_config* key = nullptr; // who.key once authenticated
    auth::key_memo* key_memo = nullptr;      // the connection's, when it keeps one
    // The body's facts (by the scan of its bytes, or from the parse), and the parse itself,
    // in OpenAI form (a /v1/messages request translated), when body_parsed.
    body_facts facts;
    nlohmann::json body;
    bool body_parsed = false;
    std::string client_model;             // the model as the client named it
    std::optional<std::size_t> body_hash; // the loop guard's hash of a large body (large_body)
    // x-michi-route-reason, when the router or a strategy chose the order: the router's, or
    // the strategy's (route_reason_made's text, or one of the snapshot's, kept alive with
    // ctx.rt), which goes first.
    std::string route_reason;
    std::string_view route_reason_kept;
    routing::reason_text route_reason_made;
    // Guards: set at admission, settled once the answer's cost is known.
    std::optional<guard::reservation> reservation;
    std::optional<guard::rate_headers> rate; // x-ratelimit-* on every guarded response
    std::optional<std::chrono::seconds> retry_after;
    // Exchange.
    unsigned fallbacks = 0; // attempts that failed over to another try
    std::vector<std::pair<std::string, std::string>> failed; // (target, why) of each
    token_usage usage;           // what it used, by billing kind (settle)
    std::uint64_t cost_nano = 0; // what it cost, in nano-dollars (x-michi-cost-usd)
    bool committed = false;      // the answer's head went out: no other answer can follow
    bool stream_open = false;    // a stream's body is under way (past its commit point)
    bool api_call = false;       // a call to the API: recorded in the request log
    // The response cache missed: the answer, once complete and good, is kept (cache_stage).
    std::unique_ptr<cache::pending_fill> cache_fill;

    dialect out() const noexcept { return dialect_of(api); }
};

} // namespace michi::pipeline
