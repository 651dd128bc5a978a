#pragma once
// What the config's section readers share with the loader: a YAML node with the path that
// names it, field tables, and the loader's typed reads, each reporting a problem at the node's
// path (so that section readers can live in files of their own).

#include "michi/config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace michi::config::yaml {

// A YAML node and the path that names it in error messages ("routes.auto.targets[1]").
struct at {
    YAML::Node node;
    std::string path;
};

using handler = std::function<void(const at&)>;
using field_table = std::vector<std::pair<std::string_view, handler>>;

// Values read with a lower bound: counts and durations.
enum class range { non_negative, positive };

// The loader's reads, as section readers use them. Each answers nullopt for a null node (keep
// the default) or a wrong one (reported).
class reader {
public:
    virtual ~reader() = default;

    virtual void report(const std::string& path, const std::string& message) = 0;
    // A map with a fixed set of fields (any other is an error); each item of a list.
    virtual void read_fields(const at& a, const field_table& table) = 0;
    virtual void read_items(const at& a, const handler& fn) = 0;

    virtual std::optional<std::string> read_string(const at& f) = 0;
    virtual std::optional<std::uint64_t> read_count(const at& f, range r) = 0;
    virtual std::optional<double> read_number(const at& f) = 0;
    virtual std::optional<bool> read_flag(const at& f) = 0;
    virtual std::optional<duration> read_duration(const at& f, range r) = 0;
};

// "a.b" (or "b" at the top level).
inline std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
}

// The name of the first ${VAR} a scalar refers to, or "".
std::string first_variable(const at& f);

// --- load balancing and the response cache (load_routing.cpp) -------------------------------

// A provider's `api_key: "…"`: a pool of one (none when empty).
void read_api_key(reader& r, const at& f, provider_config& p);
// A provider's `api_keys: ["…", {key: "…", rpm: N, tpm: N}]`. A key left empty by its
// variable (`${KEY_B:-}`) is left out; a literal empty one is an error.
void read_api_keys(reader& r, const at& a, provider_config& p);
// A route's `weights: [1, 2, 7]` (checked against its targets by the validation).
void read_weights(reader& r, const at& a, std::vector<double>& out);
// A route's or a key's `cache: { ttl, nondeterministic, per_key }`.
void read_cache_policy(reader& r, const at& a, std::optional<cache_policy>& out);
// The top-level `cache: { max_bytes, max_entry_bytes, shared }`.
void read_cache_store(reader& r, const at& a, cache_config& out);

} // namespace michi::config::yaml
