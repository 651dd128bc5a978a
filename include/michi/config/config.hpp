#pragma once
// The configuration snapshot: plain structs filled by the YAML loader (the only
// user of yaml-cpp) and checked by the validator. Shared read-only between workers.

#include "michi/core/secret.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace michi::config {

using duration = std::chrono::milliseconds;

struct tls_config {
    std::string cert_file;
    std::string key_file;
    bool enabled() const { return !cert_file.empty(); }
};

struct server_config {
    std::string listen = "0.0.0.0:8080";
    std::string host = "0.0.0.0"; // derived from listen
    std::uint16_t port = 8080;    // derived from listen (0 = ephemeral)
    unsigned threads = 0;         // 0 = one per core
    std::size_t max_body_bytes = 10485760;
    std::size_t max_header_bytes = 16384; // extension
    std::size_t max_json_depth = 128;     // nesting of any JSON read from outside (extension)
    duration idle_timeout{std::chrono::seconds(60)};
    duration read_timeout{std::chrono::seconds(30)}; // extension: whole request must arrive
    duration drain_timeout{std::chrono::seconds(30)};
    tls_config tls;
};

struct admin_config {
    secret key; // empty: admin API and dashboard disabled
};

struct store_config {
    std::string sqlite = "data/michi.db";
    std::string redis;
    duration flush_interval{std::chrono::milliseconds(200)};
    duration log_retention{std::chrono::hours(24 * 30)}; // extension: request-log rows kept
};

struct log_config {
    std::string level = "info";  // trace debug info warn error
    std::string format = "text"; // text | json
};

enum class provider_type { openai, anthropic, gemini, azure, echo };

// One of a provider's API keys, with the upstream's own limits on it when they are known
// (requests and tokens a minute): Michi moves to another key, or the next target, first.
struct provider_key {
    secret key;
    std::optional<std::uint64_t> rpm;
    std::optional<std::uint64_t> tpm;
};

// The most connections a provider's `prewarm` may ask each worker to open.
inline constexpr unsigned max_prewarm = 64;

struct provider_config {
    std::string name;
    provider_type type = provider_type::openai;
    std::string base_url;
    // `api_key` (one) or `api_keys` (a pool the requests are spread over); none: no key sent.
    std::vector<provider_key> api_keys;
    std::map<std::string, std::string> headers;
    duration connect_timeout{std::chrono::seconds(5)};
    duration timeout{std::chrono::seconds(600)};
    unsigned max_connections = 256;
    // Connections each worker opens to the provider at start and on a reload, in the
    // background, for the first requests to reuse (0: none, opened on demand).
    unsigned prewarm = 0;
    std::string api_version; // azure
    std::string ca_file;     // extension: extra trust anchors (PEM) for this provider
    // The provider's APIs (openai and azure types): Chat Completions, and the Responses API
    // when `apis` lists it (OpenAI's own service does).
    bool chat_api = true;
    bool responses_api = false;
    std::string api_key_env; // the environment variable api_key was read from, if any
};

// Prices that apply once a request's input (all kinds) exceeds above_input_tokens, USD per
// million tokens; a price left out stays what it is below the threshold.
struct long_context_prices {
    std::uint64_t above_input_tokens = 0;
    std::optional<double> input_per_mtok;
    std::optional<double> output_per_mtok;
    std::optional<double> cache_read_per_mtok;
    std::optional<double> cache_write_per_mtok;
    std::optional<double> cache_write_1h_per_mtok;
    bool operator==(const long_context_prices&) const = default;
};

// Where a model's prices come from: the config's `models:`, the table shipped with the
// gateway, or the price file named by prices.file.
enum class price_source { config, table, file };

struct model_config {
    std::string name;     // "provider/model"
    std::string provider; // "provider"
    std::string model;    // "model"
    std::string upstream; // name sent upstream (defaults to model)
    std::optional<double> input_per_mtok;
    std::optional<double> output_per_mtok;
    // Input read from the prompt cache, and written to it for 5 minutes (or an unsaid time)
    // and for 1 hour; unset: charged at the input price (the 1 h price falls back on the 5 min
    // one first).
    std::optional<double> cache_read_per_mtok;
    std::optional<double> cache_write_per_mtok;
    std::optional<double> cache_write_1h_per_mtok;
    std::optional<long_context_prices> long_context;
    std::optional<std::uint64_t> context_window;
    bool supports_tools = true;
    bool supports_images = true;
    bool builtin = false; // came from the price table, not the config file
    price_source source = price_source::config;
    std::string as_of; // "YYYY-MM-DD" the prices were true; empty when unknown
};

class price_table;

struct prices_config {
    std::string file; // empty: the shipped table only
};

enum class route_strategy { fallback, cheapest, weighted, least_busy, latency };

// The response cache's terms for a route's or a key's requests (`cache: { ttl: 10m }`).
struct cache_policy {
    duration ttl{std::chrono::minutes(10)};
    bool nondeterministic = false; // requests with temperature > 0 are cached too
    bool per_key = false;          // an answer serves only the API key that asked for it
    bool operator==(const cache_policy&) const = default;
};

struct route_config {
    std::string name;
    route_strategy strategy = route_strategy::fallback;
    std::vector<std::string> targets; // "provider/model", validated against models
    std::vector<double> weights;      // weighted only: one positive number per target
    duration attempt_timeout{std::chrono::seconds(30)};
    unsigned retries = 0;
    std::optional<cache_policy> cache; // unset: no response cache for this route
};

enum class key_class { developer, application, agent };

struct limits {
    std::optional<std::uint64_t> rpm;
    std::optional<std::uint64_t> tpm;
    std::optional<double> daily_usd;
    std::optional<double> monthly_usd;
    std::optional<std::uint64_t> loop_max;
    std::optional<duration> loop_window;
};

struct key_config {
    std::string id;
    key_class cls = key_class::developer;
    std::string secret_sha256;         // lower-case hex; empty = key disabled
    std::vector<std::string> models;   // globs; empty = every model and route
    limits overrides;                  // per-key values, unset = class default
    std::optional<cache_policy> cache; // the response cache for this key's requests
};

// The response cache's store: memory bounds, and whether Redis (store.redis) holds it too.
struct cache_config {
    std::size_t max_bytes = 64 * 1024 * 1024;  // answers kept in memory (least recently used go)
    std::size_t max_entry_bytes = 1024 * 1024; // a larger answer is not cached
    bool shared = true; // with store.redis: kept in Redis too, so replicas share it
};

struct config {
    server_config server;
    admin_config admin;
    store_config store;
    log_config log;
    std::map<std::string, provider_config> providers;
    prices_config prices;
    // prices.file as loaded (null without one); looked up before the shipped table.
    std::shared_ptr<const price_table> price_file;
    std::map<std::string, model_config> models; // config entries merged over the price table
    std::map<std::string, route_config> routes;
    duration cooldown{std::chrono::seconds(30)};
    unsigned cooldown_failures = 3;
    cache_config cache;
    std::map<key_class, limits> key_classes;
    std::vector<key_config> keys;
    std::string source_path; // file it was loaded from, for reloads

    // The model entry for "provider/model": from `models:`, else the price file's entry, else
    // the shipped table's, for a configured provider (price_table::find says by which
    // names); an `echo` provider accepts any model name at price 0. nullopt when unknown.
    std::optional<model_config> find_model(const std::string& name) const;
    // Class default overlaid with the key's own values.
    limits effective_limits(const key_config& key) const;
};

// Looks up an environment variable; nullopt when unset.
using env_lookup = std::function<std::optional<std::string>(const std::string&)>;
env_lookup process_env();

struct load_result {
    std::shared_ptr<const config> cfg; // null when errors is non-empty
    std::vector<std::string> errors;   // every problem, each naming its YAML path
};

load_result load_file(const std::string& path, const env_lookup& env = process_env());
load_result load_string(const std::string& yaml_text, const env_lookup& env = process_env());

// Cross-field checks on a built snapshot (provider settings by type, dangling provider and
// model names, duplicate key ids and secrets); every problem names its YAML path. load_*
// already runs it; run it again on an edited copy (admin API) before swapping it in.
std::vector<std::string> validate(const config& cfg);

// Durations like "250ms", "30s", "5m", "1h"; a bare integer is seconds; nullopt on bad input.
std::optional<duration> parse_duration(const std::string& text);

// "YYYY-MM-DD" -> days since the epoch; nullopt unless a real calendar date.
std::optional<std::chrono::sys_days> parse_date(std::string_view text);

const char* to_string(provider_type t);
const char* to_string(price_source s);
const char* to_string(key_class c);
const char* to_string(route_strategy s);
std::optional<key_class> parse_key_class(const std::string& s);
std::optional<provider_type> parse_provider_type(const std::string& s);
std::optional<route_strategy> parse_route_strategy(const std::string& s);

// Whether name is a model or route of the config (a `models:` entry, a route, or a built-in
// model on a configured provider) rather than a name only a client made up.
bool is_configured_model(const config& cfg, std::string_view name);

} // namespace michi::config
