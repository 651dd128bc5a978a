#pragma once
// Where a provider lives: scheme, host, port and path prefix of its base_url, its pool key
// and, for HTTPS, the TLS client context that verifies it.

#include "michi/core/net.hpp"

#include <memory>
#include <optional>
#include <string>

namespace michi::upstream {

struct endpoint {
    bool tls = false;
    std::string host;
    std::string port;
    std::string base_path; // no trailing slash
    std::string pool_key;  // "https://host:port#provider": one idle list per endpoint
    std::shared_ptr<ssl::context> tls_ctx;
};

// Parses "http(s)://host[:port][/path]"; nullopt when malformed.
std::optional<endpoint> parse_base_url(const std::string& url);

// A TLS client context that verifies peers against the system trust store (plus `ca_file`
// when given). Throws on a bad ca_file.
std::shared_ptr<ssl::context> make_client_tls_context(const std::string& ca_file);

} // namespace michi::upstream
