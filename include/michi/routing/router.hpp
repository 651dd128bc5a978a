#pragma once
// The router: a requested name -> a dispatch plan. The name resolves, in order, to a route,
// `auto`, or a configured provider/model; the key's model globs bound both what it may ask
// for and what may serve it (targets they do not cover are skipped); a strategy orders the
// targets (cheapest: by expected cost, dropping those that cannot serve the request).

#include "michi/core/result.hpp"
#include "michi/routing/plan.hpp"
#include "michi/routing/route_table.hpp"

#include <map>
#include <string>

namespace michi::routing {

// What the router reads of a request.
struct request_needs {
    bool tools = false;
    bool images = false;
    bool priced_only = false; // drop unpriced targets when choosing by cost (chat)
    std::uint64_t prompt_tokens = 0;
    std::uint64_t max_output = 0;
};

// The plan for `name`, into `plan` (a new one): 404 model_not_found, 403 model_not_allowed
// (the name, or every target outside the key's globs), 400 when no target can serve the
// request.
result<void> resolve(const config::config& cfg, const provider_map& providers,
                     const route_table& table, const std::string& name, const request_needs& needs,
                     const config::key_config& key, dispatch_plan& plan);

} // namespace michi::routing
