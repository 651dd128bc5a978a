#pragma once
// The operator's side of the daemon: GET /metrics (Prometheus), the admin API under
// /admin/ (keys, usage, routes; on admin.key) and the dashboard under /dashboard/.

#include "michi/app/worker.hpp"
#include "michi/pipeline/request_context.hpp"
#include "michi/server/client_io.hpp"

namespace michi::admin {

// True when the path belongs here (the response has then been written).
bool owns(std::string_view path);
awaitable<void> handle(worker& w, server::client_io& io, pipeline::request_context& ctx);

} // namespace michi::admin
