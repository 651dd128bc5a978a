#pragma once
// GET /admin/models: every model the gateway can price, with its prices, where they come from
// (config, table, file) and the date they were true (as_of).

#include "michi/config/config.hpp"

#include <nlohmann/json.hpp>

namespace michi::admin {

// The body of GET /admin/models for a config: `data` holds the models the config serves
// (`models:` entries and route targets, as `provider/model`), `table` every entry of the price
// tables in use (the price file's, then the shipped table's), which price `provider/<name>` for
// any configured provider, and `prices` says which tables those are.
nlohmann::json models_json(const config::config& cfg);

} // namespace michi::admin
