#pragma once
// Serves one accepted client connection (plain or TLS) on its worker: reads requests with
// explicit header/body limits and timeouts, hands each to the router, and keeps the
// connection alive between requests. Writes each request's access-log line and metrics.

#include "michi/core/inflight.hpp"
#include "michi/core/net.hpp"
#include "michi/core/published.hpp"
#include "michi/obs/metrics.hpp"
#include "michi/pipeline/snapshot.hpp"
#include "michi/server/router.hpp"

namespace michi::server {

// What a connection uses of its worker and of the gateway.
struct connection_deps {
    executor ex;
    server::deps& planes;
    const published<pipeline::snapshot>& snapshots; // the config in force
    inflight_count& inflight;
    obs::metrics& metrics;
};

// Runs the connection to its end; never throws.
awaitable<void> serve_connection(connection_deps& d, tcp_socket socket, ssl::context* tls);

} // namespace michi::server
