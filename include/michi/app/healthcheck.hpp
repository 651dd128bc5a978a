#pragma once
// `michi-gateway healthcheck [--url URL]`: one plain-HTTP GET of the gateway's /healthz, for
// container HEALTHCHECKs and probes in images that have no curl or wget.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace michi {

// Where a probe goes: an http:// URL taken apart.
struct probe_target {
    std::string host;
    std::string port;
    std::string target; // path and query, "/" when the URL has none
};

// The URL's parts, or nullopt with why ("only http:// URLs are probed", "no host in the URL").
std::optional<probe_target> parse_probe_url(std::string_view url, std::string& why);

// GETs the target within `timeout` (connect, request and response): true on a 200. `what`
// says what happened ("200 OK", "connection refused", "timed out after 2000 ms").
bool probe(const probe_target& t, std::chrono::milliseconds timeout, std::string& what);

// The subcommand: exit 0 on a 200, 1 on anything else or no answer in time, 2 on bad
// arguments. Default URL http://127.0.0.1:8080/healthz.
int run_healthcheck(const std::vector<std::string_view>& args);

} // namespace michi
