#pragma once
// Everything derived from one config snapshot that requests need: the config, the key store
// and each provider bound to its adapter and endpoint. Immutable once built; a request keeps
// the snapshot it started with.

#include "michi/auth/key_store.hpp"
#include "michi/config/config.hpp"
#include "michi/core/result.hpp"
#include "michi/routing/router.hpp"

#include <memory>

namespace michi::pipeline {

struct snapshot {
    std::shared_ptr<const config::config> cfg;
    auth::key_store keys;
    routing::provider_map providers; // by provider name
    routing::route_table routes;     // routes and models resolved once, with their signals

    explicit snapshot(std::shared_ptr<const config::config> c);
    // Builds a snapshot; an error naming the config path (a bad base_url or ca_file).
    // `signals`: the process's live signals, which the route targets are bound to.
    static result<std::shared_ptr<const snapshot>> build(std::shared_ptr<const config::config> c,
                                                         routing::signal_board* signals = nullptr);
};

} // namespace michi::pipeline
