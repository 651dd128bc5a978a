// YAML -> config structs; the only user of yaml-cpp. Every scalar goes through ${VAR}
// interpolation before it is typed, and every problem is collected with its YAML path, so
// one run reports all of them. Nothing throws out of load_file / load_string.

#include "michi/config/config.hpp"
#include "michi/config/price_table.hpp"
#include "michi/core/secret.hpp"
#include "michi/core/url_text.hpp"
#include "michi/redis/redis_url.hpp"
#include "yaml_reader.hpp"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <set>
#include <string_view>
#include <utility>

namespace michi::config {
namespace {

using yaml::at;
using yaml::field_table;
using yaml::handler;
using yaml::join;
using yaml::range;
template <class T>
concept ranged = std::unsigned_integral<T> || std::same_as<T, duration>;

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string describe(const YAML::Node& n) {
    if (n.IsMap()) {
        return "a map";
    }
    if (n.IsSequence()) {
        return "a list";
    }
    return n.IsScalar() ? in_quotes(n.Scalar()) : "nothing";
}

bool is_var_name(std::string_view s) {
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s.front()))) {
        return false;
    }
    for (const char c : s) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
            return false;
        }
    }
    return true;
}

// "host:port", "[v6addr]:port" or ":port" (every interface).
std::optional<std::pair<std::string, std::uint16_t>> split_host_port(std::string_view s) {
    std::string why;
    const auto parts = wire::split_authority(s, why);
    if (!parts || !parts->port) {
        return std::nullopt;
    }
    if (!s.starts_with('[') && parts->host.find(':') != std::string::npos) {
        return std::nullopt; // an IPv6 address needs brackets
    }
    const std::string_view port = *parts->port;
    std::uint16_t n = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (port.empty() || ec != std::errc{} || end != port.data() + port.size()) {
        return std::nullopt;
    }
    return std::pair{parts->host.empty() ? std::string("0.0.0.0") : parts->host, n};
}

bool is_header_name(std::string_view s) {
    static constexpr std::string_view specials = "!#$%&'*+-.^_`|~";
    return !s.empty() && std::ranges::all_of(s, [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               specials.find(c) != std::string_view::npos;
    });
}

std::optional<std::string> parse_log_level(const std::string& s) {
    static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error"};
    return levels.contains(s) ? std::optional(s) : std::nullopt;
}

std::optional<std::string> parse_log_format(const std::string& s) {
    return s == "text" || s == "json" ? std::optional(s) : std::nullopt;
}

template <class T> void set(T& out, std::optional<T> value) {
    if (value) {
        out = std::move(*value);
    }
}

template <class T> void set(std::optional<T>& out, std::optional<T> value) {
    if (value) {
        out = std::move(value);
    }
}

template <class T> void fill(std::optional<T>& out, const std::optional<T>& fallback) {
    if (!out) {
        out = fallback;
    }
}

// Walks the YAML tree into a config, collecting every error on the way.
class loader final : public yaml::reader {
public:
    explicit loader(const env_lookup& env) : env_(env) {}

    // The reads section readers in other files use.
    void report(const std::string& path, const std::string& message) override {
        error(path, message);
    }
    void read_fields(const at& a, const field_table& table) override { fields(a, table); }
    void read_items(const at& a, const handler& fn) override { items(a, fn); }
    std::optional<std::string> read_string(const at& f) override { return str(f); }
    std::optional<std::uint64_t> read_count(const at& f, range r) override {
        return integer<std::uint64_t>(f, r);
    }
    std::optional<double> read_number(const at& f) override { return number(f); }
    std::optional<bool> read_flag(const at& f) override { return flag(f); }
    std::optional<duration> read_duration(const at& f, range r) override { return dur(f, r); }

    std::vector<std::string> load(const YAML::Node& root, config& cfg) {
        std::optional<at> models; // read after providers: model defaults depend on their type
        const field_table table{
            {"server", [&](const at& f) { server(f, cfg.server); }},
            {"admin",
             [&](const at& f) {
                 fields(f, {{"key", to(cfg.admin.key)}});
             }},
            {"store", [&](const at& f) { store(f, cfg.store); }},
            {"log", [&](const at& f) { log(f, cfg.log); }},
            {"providers",
             [&](const at& f) {
                 entries(f, [&](const std::string& name, const at& p) {
                     provider(name, p, cfg.providers[name]);
                 });
             }},
            {"prices",
             [&](const at& f) { fields(f, {{"file", to(cfg.prices.file)}}); }},
            {"models", [&](const at& f) { models = f; }},
            {"routes",
             [&](const at& f) {
                 entries(f, [&](const std::string& name, const at& r) {
                     route(name, r, cfg.routes[name]);
                 });
             }},
            {"cooldown", to(cfg.cooldown)},
            {"cooldown_failures", to(cfg.cooldown_failures, range::positive)},
            {"cache", [&](const at& f) { yaml::read_cache_store(*this, f, cfg.cache); }},
            {"key_classes",
             [&](const at& f) {
                 entries(f, [&](const std::string& name, const at& c) {
                     key_class_limits(name, c, cfg);
                 });
             }},
            {"keys",
             [&](const at& f) { items(f, [&](const at& k) { key(k, cfg.keys.emplace_back()); }); }},
        };
        fields({root, ""}, table);
        load_prices(cfg); // before models: their unset prices come from the tables
        if (models) {
            entries(*models, [&](const std::string& name, const at& m) { model(name, m, cfg); });
        }
        return std::move(errors_);
    }

private:
    void error(const std::string& path, const std::string& message) {
        errors_.push_back((path.empty() ? "top level" : path) + ": " + message);
    }

    // --- structure: maps, lists, known fields --------------------------------------------

    // Runs one reader; a surprise from yaml-cpp becomes an error at the node's path.
    void guarded(const at& a, const handler& read) {
        try {
            read(a);
        } catch (const std::exception& e) {
            error(a.path, e.what());
        }
    }

    // fn(key, child) for each entry of a map; null counts as an empty map.
    void entries(const at& a, const std::function<void(const std::string&, const at&)>& fn) {
        if (a.node.IsNull()) {
            return;
        }
        if (!a.node.IsMap()) {
            error(a.path, "expected a map, got " + describe(a.node));
            return;
        }
        std::set<std::string> seen;
        for (const auto& kv : a.node) {
            if (!kv.first.IsScalar()) {
                error(a.path, "expected a name as key, got " + describe(kv.first));
                continue;
            }
            const std::string key = kv.first.Scalar();
            const at child{kv.second, join(a.path, key)};
            if (!seen.insert(key).second) {
                error(child.path, "defined twice");
                continue;
            }
            guarded(child, [&](const at& c) { fn(key, c); });
        }
    }

    // A map with a fixed set of fields; any other field is an error.
    void fields(const at& a, const field_table& table) {
        entries(a, [&](const std::string& key, const at& f) {
            for (const auto& [name, read] : table) {
                if (key == name) {
                    read(f);
                    return;
                }
            }
            error(f.path, "unknown field");
        });
    }

    // Reports `key` as missing from the map at `a` (a null map lacks every field).
    void require(const at& a, const char* key) {
        const bool absent = a.node.IsNull() ||
                            (a.node.IsMap() && (!a.node[key].IsDefined() || a.node[key].IsNull()));
        if (absent) {
            error(join(a.path, key), "missing required field");
        }
    }

    // fn(item) for each item of a list; null counts as an empty list.
    void items(const at& a, const handler& fn) {
        if (a.node.IsNull()) {
            return;
        }
        if (!a.node.IsSequence()) {
            error(a.path, "expected a list, got " + describe(a.node));
            return;
        }
        std::size_t i = 0;
        for (const auto& item : a.node) {
            guarded({item, a.path + "[" + std::to_string(i++) + "]"}, fn);
        }
    }

    // --- scalars ----------------------------------------------------------------------------

    // ${VAR} and ${VAR:-default} (default also when VAR is empty, as in sh); $$ is "$".
    std::optional<std::string> interpolate(std::string_view in, const std::string& path) {
        std::string out;
        bool ok = true;
        for (std::size_t i = 0; i < in.size(); ++i) {
            const std::string_view next = in.substr(i + 1, 1);
            if (in[i] != '$' || (next != "$" && next != "{")) {
                out += in[i];
                continue;
            }
            if (next == "$") {
                out += '$';
                ++i;
                continue;
            }
            const auto close = in.find('}', i);
            if (close == std::string_view::npos) {
                error(path, "unterminated \"${\" (write \"$$\" for a literal \"$\")");
                return std::nullopt;
            }
            const std::string_view ref = in.substr(i + 2, close - i - 2);
            const auto sep = ref.find(":-");
            const std::string var(ref.substr(0, sep));
            i = close;
            if (!is_var_name(var)) {
                error(path, "invalid environment variable reference " +
                                in_quotes("${" + std::string(ref) + "}"));
                ok = false;
                continue;
            }
            const auto value = env_ ? env_(var) : std::nullopt;
            if (sep != std::string_view::npos && (!value || value->empty())) {
                out += ref.substr(sep + 2);
            } else if (value) {
                out += *value;
            } else {
                error(path, "environment variable " + var + " is not set");
                ok = false;
            }
        }
        return ok ? std::optional(std::move(out)) : std::nullopt;
    }

    // The scalar's text after interpolation; nullopt when null (keep the default) or wrong.
    std::optional<std::string> text(const at& f, const std::string& what) {
        if (f.node.IsNull()) {
            return std::nullopt;
        }
        if (!f.node.IsScalar()) {
            error(f.path, "expected " + what + ", got " + describe(f.node));
            return std::nullopt;
        }
        return interpolate(f.node.Scalar(), f.path);
    }

    // Text for a typed value: empty counts as unset, so `rpm: ${RPM:-}` keeps the default.
    std::optional<std::string> typed_text(const at& f, const std::string& what) {
        auto t = text(f, what);
        return t && t->empty() ? std::nullopt : t;
    }

    std::optional<std::string> str(const at& f) { return text(f, "a string"); }

    template <std::unsigned_integral T>
    std::optional<T> integer(const at& f, range r = range::non_negative) {
        const std::string what =
            r == range::positive ? "a positive integer" : "a non-negative integer";
        const auto t = typed_text(f, what);
        if (!t) {
            return std::nullopt;
        }
        std::uint64_t v = 0;
        const char* end = t->data() + t->size();
        const auto [p, ec] = std::from_chars(t->data(), end, v);
        if (ec == std::errc::result_out_of_range ||
            (ec == std::errc{} && p == end && v > std::numeric_limits<T>::max())) {
            error(f.path, "expected an integer no greater than " +
                              std::to_string(std::numeric_limits<T>::max()) + ", got " +
                              in_quotes(*t));
            return std::nullopt;
        }
        if (ec != std::errc{} || p != end || (r == range::positive && v == 0)) {
            error(f.path, "expected " + what + ", got " + in_quotes(*t));
            return std::nullopt;
        }
        return static_cast<T>(v);
    }

    std::optional<double> number(const at& f) {
        const std::string what = "a non-negative number";
        const auto t = typed_text(f, what);
        if (!t) {
            return std::nullopt;
        }
        double v = 0;
        const char* end = t->data() + t->size();
        const auto [p, ec] = std::from_chars(t->data(), end, v);
        if (ec != std::errc{} || p != end || !std::isfinite(v) || v < 0) {
            error(f.path, "expected " + what + ", got " + in_quotes(*t));
            return std::nullopt;
        }
        return v;
    }

    std::optional<bool> flag(const at& f) {
        const auto t = typed_text(f, "true or false");
        if (t && (*t == "true" || *t == "false")) {
            return *t == "true";
        }
        if (t) {
            error(f.path, "expected true or false, got " + in_quotes(*t));
        }
        return std::nullopt;
    }

    std::optional<duration> dur(const at& f, range r = range::non_negative) {
        const std::string what = std::string(r == range::positive ? "a positive" : "a") +
                                 " duration like 250ms, 30s, 5m or 1h";
        const auto t = typed_text(f, what);
        if (!t) {
            return std::nullopt;
        }
        const auto d = parse_duration(*t);
        if (!d || (r == range::positive && d->count() == 0)) {
            error(f.path, "expected " + what + ", got " + in_quotes(*t));
            return std::nullopt;
        }
        return d;
    }

    // One of a fixed set of names; unlike other typed values, empty is not "unset".
    template <class T>
    std::optional<T> choice(const at& f, std::optional<T> (*parse)(const std::string&),
                            const std::string& what, const std::string& expected) {
        const auto t = text(f, "a " + what);
        if (!t) {
            return std::nullopt;
        }
        auto v = parse(*t);
        if (!v) {
            error(f.path, "unknown " + what + " " + in_quotes(*t) + " (expected " + expected + ")");
        }
        return v;
    }

    std::vector<std::string> strings(const at& a) {
        std::vector<std::string> out;
        items(a, [&](const at& f) { set(out.emplace_back(), str(f)); });
        return out;
    }

    // --- readers bound to their destination, for the field tables ---------------------------

    handler to(std::string& out) {
        return [this, &out](const at& f) { set(out, str(f)); };
    }
    handler to(secret& out) {
        return [this, &out](const at& f) {
            if (auto s = str(f)) {
                out = secret(std::move(*s));
            }
        };
    }
    handler to(std::optional<bool>& out) {
        return [this, &out](const at& f) { set(out, flag(f)); };
    }
    handler to(std::optional<double>& out) {
        return [this, &out](const at& f) { set(out, number(f)); };
    }
    handler to(std::vector<std::string>& out) {
        return [this, &out](const at& f) { out = strings(f); };
    }
    template <ranged T> handler to(T& out, range r = range::non_negative) {
        return [this, &out, r](const at& f) { set(out, scalar<T>(f, r)); };
    }
    template <ranged T> handler to(std::optional<T>& out, range r) {
        return [this, &out, r](const at& f) { set(out, scalar<T>(f, r)); };
    }
    template <class T>
    handler to(T& out, std::optional<T> (*parse)(const std::string&), const char* what,
               const char* expected) {
        return [=, this, &out](const at& f) { set(out, choice(f, parse, what, expected)); };
    }

    template <ranged T> std::optional<T> scalar(const at& f, range r) {
        if constexpr (std::same_as<T, duration>) {
            return dur(f, r);
        } else {
            return integer<T>(f, r);
        }
    }

    // --- sections ---------------------------------------------------------------------------

    void server(const at& a, server_config& s) {
        const field_table table{
            {"listen", [&](const at& f) { listen(f, s); }},
            {"threads", to(s.threads)},
            {"max_body_bytes", to(s.max_body_bytes, range::positive)},
            {"max_header_bytes", to(s.max_header_bytes, range::positive)},
            {"idle_timeout", to(s.idle_timeout, range::positive)},
            {"read_timeout", to(s.read_timeout, range::positive)},
            {"drain_timeout", to(s.drain_timeout)},
            {"tls",
             [&](const at& f) {
                 fields(f, {{"cert_file", to(s.tls.cert_file)}, {"key_file", to(s.tls.key_file)}});
             }},
        };
        fields(a, table);
    }

    void listen(const at& f, server_config& s) {
        const auto t = typed_text(f, "\"host:port\"");
        if (!t) {
            return;
        }
        const auto host_port = split_host_port(*t);
        if (!host_port) {
            error(f.path, "expected \"host:port\" or \"[ipv6]:port\", got " + in_quotes(*t));
            return;
        }
        s.listen = *t;
        s.host = host_port->first;
        s.port = host_port->second;
    }

    void store(const at& a, store_config& s) {
        const field_table table{
            {"sqlite", to(s.sqlite)},
            {"redis",
             [&](const at& f) {
                 set(s.redis, str(f));
                 std::string why;
                 if (s.redis.empty()) {
                     return;
                 }
                 if (!s.redis.starts_with("redis://") && !s.redis.starts_with("rediss://") &&
                     !s.redis.starts_with("redis+") && !s.redis.starts_with("rediss+")) {
                     error(f.path, "expected a redis://, rediss://, redis+sentinel:// or "
                                   "redis+cluster:// URL, got " + in_quotes(s.redis));
                 } else if (!redis::redis_url::parse(s.redis, why)) {
                     // (not the URL itself: it may hold a password)
                     error(f.path, "bad Redis URL: " + why);
                 }
             }},
            {"flush_interval", to(s.flush_interval, range::positive)},
            {"log_retention", to(s.log_retention, range::positive)},
        };
        fields(a, table);
    }

    void log(const at& a, log_config& l) {
        const field_table table{
            {"level",
             to(l.level, parse_log_level, "log level", "trace, debug, info, warn or error")},
            {"format", to(l.format, parse_log_format, "log format", "text or json")},
        };
        fields(a, table);
    }

    void provider(const std::string& name, const at& a, provider_config& p) {
        p.name = name;
        if (name.empty() || name.find('/') != std::string::npos) {
            error(a.path, "a provider name must be non-empty and contain no \"/\"");
        }
        require(a, "type");
        const field_table table{
            {"type", to(p.type, parse_provider_type, "provider type",
                        "openai, anthropic, gemini, azure or echo")},
            {"base_url",
             [&](const at& f) {
                 set(p.base_url, str(f));
                 while (p.base_url.ends_with('/')) {
                     p.base_url.pop_back();
                 }
             }},
            {"api_key", [&](const at& f) { yaml::read_api_key(*this, f, p); }},
            {"api_keys", [&](const at& f) { yaml::read_api_keys(*this, f, p); }},
            {"apis", [&](const at& f) { apis(f, p); }},
            {"headers", [&](const at& f) { headers(f, p.headers); }},
            {"connect_timeout", to(p.connect_timeout, range::positive)},
            {"timeout", to(p.timeout, range::positive)},
            {"max_connections", to(p.max_connections, range::positive)},
            {"api_version", to(p.api_version)},
            {"ca_file", to(p.ca_file)},
        };
        fields(a, table);
        if (a.node.IsMap() && a.node["api_key"].IsDefined() && a.node["api_keys"].IsDefined()) {
            error(join(a.path, "api_keys"), "set either api_key or api_keys, not both");
        }
    }

    // `apis: [chat, responses]`: the APIs an OpenAI-type provider answers.
    void apis(const at& a, provider_config& p) {
        const auto list = strings(a);
        if (list.empty()) {
            error(a.path, "expected a non-empty list of chat, responses");
            return;
        }
        p.chat_api = p.responses_api = false;
        for (const auto& api : list) {
            if (api == "chat") {
                p.chat_api = true;
            } else if (api == "responses") {
                p.responses_api = true;
            } else {
                error(a.path, "unknown API " + in_quotes(api) + " (expected chat or responses)");
            }
        }
    }

    void headers(const at& a, std::map<std::string, std::string>& out) {
        entries(a, [&](const std::string& name, const at& f) {
            const auto value = str(f);
            if (!is_header_name(name)) {
                error(f.path, "invalid header name");
            } else if (value &&
                       value->find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
                error(f.path, "a header value must not contain line breaks or NUL");
            } else if (value) {
                out[name] = *value;
            }
        });
    }

    // A `models:` entry. Unset upstream is the price table's upstream name, else the model
    // part; unset prices, context window and capabilities come from the price file or the
    // shipped table (or echo's free defaults) when they know the model.
    void model(const std::string& name, const at& a, config& cfg) {
        const auto slash = name.find('/');
        if (slash == std::string::npos || slash == 0 || slash + 1 == name.size()) {
            error(a.path, "expected a model name like \"provider/model\"");
            return;
        }
        model_config m;
        m.name = name;
        m.provider = name.substr(0, slash);
        m.model = name.substr(slash + 1);
        std::optional<bool> tools;
        std::optional<bool> images;
        const field_table table{
            {"upstream", to(m.upstream)},
            {"input_per_mtok", to(m.input_per_mtok)},
            {"output_per_mtok", to(m.output_per_mtok)},
            {"cache_read_per_mtok", to(m.cache_read_per_mtok)},
            {"cache_write_per_mtok", to(m.cache_write_per_mtok)},
            {"cache_write_1h_per_mtok", to(m.cache_write_1h_per_mtok)},
            {"long_context", [&](const at& f) { long_context(f, m.long_context); }},
            {"as_of", [&](const at& f) { as_of(f, m.as_of); }},
            {"context_window", to(m.context_window, range::positive)},
            {"supports_tools", to(tools)},
            {"supports_images", to(images)},
        };
        fields(a, table);
        // Prices merge field by field over the table's (long_context as one field); the
        // entry's prices count as the config's once it sets any of them.
        const bool priced_here = m.input_per_mtok || m.output_per_mtok ||
                                 m.cache_read_per_mtok || m.cache_write_per_mtok ||
                                 m.cache_write_1h_per_mtok || m.long_context;
        const auto base = cfg.find_model(name);
        if (m.upstream.empty()) {
            m.upstream = base ? base->upstream : m.model;
        }
        m.source = price_source::config;
        if (base) {
            fill(m.input_per_mtok, base->input_per_mtok);
            fill(m.output_per_mtok, base->output_per_mtok);
            fill(m.cache_read_per_mtok, base->cache_read_per_mtok);
            fill(m.cache_write_per_mtok, base->cache_write_per_mtok);
            fill(m.cache_write_1h_per_mtok, base->cache_write_1h_per_mtok);
            fill(m.long_context, base->long_context);
            if (!priced_here) {
                m.source = base->source;
                if (m.as_of.empty()) {
                    m.as_of = base->as_of;
                }
            }
            fill(m.context_window, base->context_window);
            fill(tools, std::optional(base->supports_tools));
            fill(images, std::optional(base->supports_images));
        }
        m.supports_tools = tools.value_or(true);
        m.supports_images = images.value_or(true);
        cfg.models[name] = std::move(m);
    }

    // prices.file: loaded here, so a bad file is a config error (and a reload keeps the old
    // config); the shipped table is checked too.
    void load_prices(config& cfg) {
        for (const auto& e : shipped_price_errors()) {
            error("", "the shipped price table: " + e);
        }
        if (cfg.prices.file.empty()) {
            return;
        }
        auto loaded = load_price_file(cfg.prices.file);
        for (const auto& e : loaded.errors) {
            error("prices.file", e);
        }
        cfg.price_file = std::move(loaded.table);
    }

    void long_context(const at& a, std::optional<long_context_prices>& out) {
        long_context_prices lc;
        std::optional<std::uint64_t> above;
        const field_table table{
            {"above_input_tokens", to(above, range::positive)},
            {"input_per_mtok", to(lc.input_per_mtok)},
            {"output_per_mtok", to(lc.output_per_mtok)},
            {"cache_read_per_mtok", to(lc.cache_read_per_mtok)},
            {"cache_write_per_mtok", to(lc.cache_write_per_mtok)},
            {"cache_write_1h_per_mtok", to(lc.cache_write_1h_per_mtok)},
        };
        require(a, "above_input_tokens");
        fields(a, table);
        if (above) {
            lc.above_input_tokens = *above;
            out = lc;
        }
    }

    void as_of(const at& f, std::string& out) {
        const auto t = typed_text(f, "a date like 2026-12-01");
        if (t && parse_date(*t)) {
            out = *t;
        } else if (t) {
            error(f.path, "expected a date like 2026-12-01, got " + in_quotes(*t));
        }
    }

    void route(const std::string& name, const at& a, route_config& r) {
        r.name = name;
        const field_table table{
            {"strategy", to(r.strategy, parse_route_strategy, "strategy",
                            "fallback, cheapest, weighted, least_busy or latency")},
            {"targets", to(r.targets)},
            {"weights", [&](const at& f) { yaml::read_weights(*this, f, r.weights); }},
            {"cache", [&](const at& f) { yaml::read_cache_policy(*this, f, r.cache); }},
            {"attempt_timeout", to(r.attempt_timeout, range::positive)},
            {"retries", to(r.retries)},
        };
        fields(a, table);
    }

    field_table limit_fields(limits& l) {
        return {
            {"rpm", to(l.rpm, range::positive)},
            {"tpm", to(l.tpm, range::positive)},
            {"daily_usd", to(l.daily_usd)},
            {"monthly_usd", to(l.monthly_usd)},
            {"loop_max", to(l.loop_max, range::positive)},
            {"loop_window", to(l.loop_window, range::positive)},
        };
    }

    void key_class_limits(const std::string& name, const at& a, config& cfg) {
        const auto cls = parse_key_class(name);
        if (!cls) {
            error(a.path, "unknown key class " + in_quotes(name) +
                              " (expected developer, application or agent)");
            return;
        }
        fields(a, limit_fields(cfg.key_classes[*cls]));
    }

    // A `keys:` item. A clear secret is hashed here and goes no further.
    void key(const at& a, key_config& k) {
        std::optional<std::string> clear;
        std::optional<std::string> digest;
        field_table table{
            {"id", to(k.id)},
            {"class", to(k.cls, parse_key_class, "key class", "developer, application or agent")},
            {"secret", [&](const at& f) { clear = str(f).value_or(""); }},
            {"secret_sha256", [&](const at& f) { digest = str(f).value_or(""); }},
            {"models", to(k.models)},
            {"cache", [&](const at& f) { yaml::read_cache_policy(*this, f, k.cache); }},
        };
        std::ranges::move(limit_fields(k.overrides), std::back_inserter(table));
        require(a, "class");
        fields(a, table);
        if (!a.node.IsMap()) {
            return; // already reported
        }
        const std::string digest_path = join(a.path, "secret_sha256");
        if (clear && digest) {
            error(a.path, "set either secret or secret_sha256, not both");
        } else if (!clear && !digest) {
            error(digest_path, "missing required field (or give secret)");
        } else if (clear && !clear->empty()) {
            k.secret_sha256 = sha256_hex(*clear);
        } else if (digest && !is_sha256_hex(*digest) && !digest->empty()) {
            error(digest_path, "expected 64 hex digits (a SHA-256 digest)");
        } else if (digest) {
            std::ranges::transform(*digest, digest->begin(), [](unsigned char c) {
                return static_cast<char>(std::tolower(c));
            });
            k.secret_sha256 = *digest;
        }
    }

    env_lookup env_;
    std::vector<std::string> errors_;
};

load_result parse(const std::string& yaml_text, const env_lookup& env, const std::string& source) {
    load_result out;
    try {
        YAML::Node root;
        try {
            root = YAML::Load(yaml_text);
        } catch (const YAML::Exception& e) {
            // yaml-cpp says "bad file" where it stops at its nesting limit.
            const bool deep = dynamic_cast<const YAML::DeepRecursion*>(&e) != nullptr;
            const std::string what = deep ? "nested too deeply" : e.msg;
            out.errors.push_back(e.mark.is_null()
                                     ? "syntax error: " + what
                                     : "syntax error at line " + std::to_string(e.mark.line + 1) +
                                           ", column " + std::to_string(e.mark.column + 1) + ": " +
                                           what);
            return out;
        }
        auto cfg = std::make_shared<config>();
        cfg->source_path = source;
        out.errors = loader(env).load(root, *cfg);
        for (auto& e : validate(*cfg)) {
            out.errors.push_back(std::move(e));
        }
        if (out.errors.empty()) {
            out.cfg = std::move(cfg);
        }
    } catch (const std::exception& e) {
        out.cfg.reset();
        out.errors.push_back(std::string("internal error while loading the config: ") + e.what());
    } catch (...) {
        out.cfg.reset();
        out.errors.emplace_back("internal error while loading the config");
    }
    return out;
}

} // namespace

load_result load_string(const std::string& yaml_text, const env_lookup& env) {
    return parse(yaml_text, env, "");
}

load_result load_file(const std::string& path, const env_lookup& env) {
    load_result out;
    try {
        std::error_code ec;
        if (std::filesystem::is_directory(path, ec)) {
            out.errors.push_back(path + ": cannot read file: is a directory");
            return out;
        }
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            out.errors.push_back(path + ": cannot read file: " + std::strerror(errno));
            return out;
        }
        std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        if (in.bad()) {
            out.errors.push_back(path + ": cannot read file: " + std::strerror(errno));
            return out;
        }
        return parse(text, env, path);
    } catch (const std::exception& e) {
        out.errors.push_back(path + ": cannot read file: " + e.what());
    }
    return out;
}

} // namespace michi::config
