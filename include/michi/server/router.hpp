#pragma once
// Above the two planes: a request's path (with or without /v1) and method -> the API plane
// (chat completions, embeddings, messages, models), the probes (healthz, readyz), or the
// admin plane (admin API, dashboard, metrics); unknown paths 404, wrong methods 405. The
// table of API paths is here and nowhere else.

#include "michi/admin/admin_api.hpp"
#include "michi/downstream/client_io.hpp"
#include "michi/pipeline/deps.hpp"
#include "michi/pipeline/request_context.hpp"

#include <atomic>

namespace michi::server {

// What the planes need of the worker and the gateway.
struct deps {
    pipeline::deps& api;
    admin::deps& admin;
    const std::atomic<bool>& ready;
    const std::atomic<bool>& draining;
};

// Strips the query and the optional /v1 prefix: "/v1/models?x" -> "/models", into `out`.
void normalize_path(std::string_view target, std::string& out);

// Serves one complete request to its end.
awaitable<void> dispatch(deps& d, downstream::client_io& io, pipeline::request_context& ctx);

} // namespace michi::server
