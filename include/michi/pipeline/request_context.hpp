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

#include <nlohmann/json.hpp>

namespace michi::pipeline {

struct request_context {
    std::string request_id;
    steady_clock::time_point arrival = steady_clock::now();
    http::request<http::string_body> req;
    std::shared_ptr<const runtime> rt;
    std::string path;       // without query and without the /v1 prefix
    const config::key_config* key = nullptr;
    nlohmann::json body;    // parsed JSON body (admission)
    bool keep_alive = true; // false: close the connection after this response
    obs::access_entry log;

    // Guards: set at admission, settled by the session when the response has ended.
    guard::ledger* ledger = nullptr;                // the gateway's, set by the session
    std::optional<guard::reservation> reservation;
    std::optional<guard::rate_headers> rate;       // x-ratelimit-* on every guarded response
    std::optional<std::chrono::seconds> retry_after;
    std::uint64_t est_prompt_tokens = 0;

    double ms_since_arrival() const {
        return std::chrono::duration<double, std::milli>(steady_clock::now() - arrival).count();
    }
};

} // namespace michi::pipeline
