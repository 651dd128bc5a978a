#pragma once
// Everything derived from one config snapshot that requests need: the key store and
// each provider's parsed endpoint with its TLS client context. Immutable once built;
// a request keeps the snapshot it started with.

#include "michi/auth/key_store.hpp"
#include "michi/config/config.hpp"
#include "michi/core/net.hpp"

#include <map>
#include <memory>
#include <string>

namespace michi {

// Where a provider lives: scheme, host, port and path prefix of its base_url.
struct endpoint {
    bool tls = false;
    std::string host;
    std::string port;
    std::string base_path; // no trailing slash
    std::string pool_key;  // "https://host:port#provider": one idle list per endpoint
    std::shared_ptr<ssl::context> tls_ctx;
    // For an OpenAI-type provider (not Azure): the head of a chat and of an embeddings
    // request up to their Content-Length, the same for every request, built with the
    // snapshot (see pipeline::openai_head_prefix). Empty for other types.
    std::string chat_head;
    std::string embeddings_head;
};

namespace pipeline {
// "POST <base path>/<op> HTTP/1.1", Host, Authorization, Content-Type, User-Agent and the
// provider's configured headers, as every request of an OpenAI-type provider (not Azure)
// to that operation ("chat/completions", "embeddings") starts. Defined with the upstream
// request (pipeline/upstream_request.cpp).
std::string openai_head_prefix(const config::provider_config& p, const endpoint& ep,
                               std::string_view op);
} // namespace pipeline

// Parses "http(s)://host[:port][/path]"; nullopt when malformed.
std::optional<endpoint> parse_base_url(const std::string& url);

struct runtime {
    std::shared_ptr<const config::config> cfg;
    auth::key_store keys;
    std::map<std::string, endpoint> endpoints; // by provider name (not for echo)

    explicit runtime(std::shared_ptr<const config::config> c);
    // Builds a snapshot; on failure returns nullptr and sets error (e.g. bad ca_file).
    static std::shared_ptr<const runtime> build(std::shared_ptr<const config::config> c,
                                                std::string& error);
};

// A TLS client context that verifies peers against the system trust store (plus
// `ca_file` when given).
std::shared_ptr<ssl::context> make_client_tls_context(const std::string& ca_file);

} // namespace michi
