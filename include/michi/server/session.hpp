#pragma once
// Serves one accepted client connection (plain or TLS) on its worker: reads requests
// with explicit header/body limits and timeouts, hands each to the pipeline, and keeps
// the connection alive between requests.

#include "michi/app/worker.hpp"
#include "michi/core/net.hpp"

namespace michi::server {

// Runs the connection to its end; never throws.
awaitable<void> serve_connection(worker& w, tcp_socket socket, ssl::context* tls);

} // namespace michi::server
