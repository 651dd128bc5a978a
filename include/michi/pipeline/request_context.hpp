#pragma once
// What one request carries through the pipeline. Each stage adds to it:
//   session   -> request id, arrival time, the parsed HTTP request, runtime snapshot
//   admission -> the authenticated key, the parsed JSON body, the requested model/route
//   exchange  -> attempts, served model, time to first byte, usage
// and the access-log line is written from it when the response has ended.

#include "michi/app/runtime.hpp"
#include "michi/core/net.hpp"
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

    double ms_since_arrival() const {
        return std::chrono::duration<double, std::milli>(steady_clock::now() - arrival).count();
    }
};

} // namespace michi::pipeline
