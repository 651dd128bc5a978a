#pragma once
// The API plane: one request to an API endpoint through admission, the ledger and the
// exchange (chat completions, embeddings, messages), or the model list.

#include "michi/downstream/client_io.hpp"
#include "michi/pipeline/deps.hpp"
#include "michi/pipeline/request_context.hpp"

namespace michi::pipeline {

// Serves a request of ctx.api (chat, embeddings or messages) to its end.
awaitable<void> serve_completion(deps& d, downstream::client_io& io, request_context& ctx);
// GET /v1/models: the routes and configured models this key may use; with an id, that one
// (GET /v1/models/{id}), or 404 model_not_found.
awaitable<void> serve_models(deps& d, downstream::client_io& io, request_context& ctx,
                             std::string_view id);

} // namespace michi::pipeline
