#pragma once
// Logging setup (text or JSON lines on stdout) and the access log: one line per
// request, never a secret or a prompt.

#include "michi/config/config.hpp"

#include <chrono>
#include <cstdint>
#include <string>

namespace michi::obs {

void setup_logging(const config::log_config& cfg);

// What one request did, written once when it ends.
struct access_entry {
    std::string request_id;
    std::string method;
    std::string path;
    std::string key_id; // empty: unauthenticated
    std::string key_class;
    std::string route; // the requested model or route name
    std::string model; // provider/model that served it
    unsigned status = 0;
    unsigned attempts = 0;
    bool stream = false;
    double latency_ms = 0;
    double ttfb_ms = 0;
    std::uint64_t tokens_in = 0;          // every input token, cached ones included
    std::uint64_t tokens_out = 0;         // every output token, reasoning included
    std::uint64_t tokens_cache_read = 0;  // part of tokens_in read from the prompt cache
    std::uint64_t tokens_cache_write = 0; // part of tokens_in written to the prompt cache
    std::uint64_t tokens_reasoning = 0;   // part of tokens_out spent reasoning
    double cost_usd = 0;
    double cache_saved_usd = 0;          // what prompt caching saved (negative: writes cost more)
    std::string response_cache;          // the response cache: "hit", "miss", or "" (not used)
    double response_cache_saved_usd = 0; // a hit: what the answer cost when it was fetched
    std::string error_code;              // low-cardinality label when it failed
};

void write_access_log(const access_entry& e);

} // namespace michi::obs
