#pragma once
// What every request carries, whichever plane (API or admin) serves it: set by the session
// that read it, written to the access log when it ends.

#include "michi/core/net.hpp"
#include "michi/downstream/request_parser.hpp"
#include "michi/obs/log.hpp"

#include <string>

namespace michi::downstream {

struct call {
    std::string request_id;
    steady_clock::time_point arrival = steady_clock::now();
    request req;
    std::string path;       // without query and without the /v1 prefix
    bool keep_alive = true; // false: close the connection after this response
    obs::access_entry log;

    double ms_since_arrival() const {
        return std::chrono::duration<double, std::milli>(steady_clock::now() - arrival).count();
    }
};

} // namespace michi::downstream
