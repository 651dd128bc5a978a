#pragma once
// What one request carries through the pipeline. Each stage adds to it:
//   session   -> request id, arrival time, the parsed HTTP request, runtime snapshot
//   admission -> the authenticated key, the parsed JSON body, the requested model/route
//   admission -> ... the ledger reservation and the x-ratelimit-* values
//   exchange  -> attempts, served model, time to first byte, usage and cost
//   settle    -> (session) reservation settled to the actual cost, access-log line written

#include "michi/app/runtime.hpp"
#include "michi/core/net.hpp"
#include "michi/guard/ledger.hpp"
#include "michi/obs/log.hpp"
#include "michi/pipeline/body_scan.hpp"
#include "michi/server/request_parser.hpp"

#include <nlohmann/json.hpp>

namespace michi {
class shared_state;
}

namespace michi::guard {
class redis_ledger;
} // namespace michi::guard

namespace michi::pipeline {

// Which API the client called, and the wire format it speaks.
enum class api_kind { chat, embeddings };
enum class dialect { openai, anthropic };

struct request_context {
    std::string request_id;
    steady_clock::time_point arrival = steady_clock::now();
    server::request req;
    const runtime* rt = nullptr; // the session's snapshot, kept alive by it for the request
    std::string path;       // without query and without the /v1 prefix
    const config::key_config* key = nullptr;
    // The parsed JSON body in OpenAI form (admission translates /messages); parsed only when
    // body_parsed: a plain chat request for OpenAI-type targets is read by a scan of its
    // bytes instead (the facts below), and goes upstream spliced.
    nlohmann::json body;
    bool body_parsed = false;
    api_kind api = api_kind::chat;
    dialect out = dialect::openai;
    std::string client_model; // the model as the client named it (echoed in /messages replies)
    std::string route_reason; // x-michi-route-reason, when a strategy chose the order
    bool wants_usage = false; // the client set stream_options.include_usage
    bool keep_alive = true; // false: close the connection after this response
    obs::access_entry log;

    // Guards: set at admission, settled by the session when the response has ended.
    shared_state* state = nullptr;                  // the gateway's, set by the session
    guard::ledger* ledger = nullptr;                // the gateway's, set by the session
    // The worker's ledger in Redis when store.redis is set (the session sets it); admission
    // then leaves its request here for the handler to await.
    guard::redis_ledger* shared_ledger = nullptr;
    std::optional<guard::admission_request> shared_admission;
    std::optional<config::key_config> admin_key;    // a key made through the admin API
    std::optional<guard::reservation> reservation;
    std::optional<guard::rate_headers> rate;       // x-ratelimit-* on every guarded response
    std::optional<std::chrono::seconds> retry_after;
    // Facts of the body read at admission (by the scan or from the parse); model, stream and
    // include_usage are also in client_model, log.stream and wants_usage.
    body_facts facts;
    unsigned fallbacks = 0; // attempts that failed over to another try
    std::vector<std::pair<std::string, std::string>> failed; // (target, why) of each fallback

    double ms_since_arrival() const {
        return std::chrono::duration<double, std::milli>(steady_clock::now() - arrival).count();
    }
};

} // namespace michi::pipeline
