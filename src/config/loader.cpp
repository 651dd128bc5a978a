// YAML -> config structs; the only user of yaml-cpp. Every scalar goes through ${VAR}
// interpolation before it is typed, and every problem is collected with its YAML path, so
// one run reports all of them. Nothing throws out of load_file / load_string.

#include "yaml_reader.hpp"

namespace michi::config {
namespace {

using namespace yaml;

// Walks the YAML tree into a config, collecting every error on the way.
class loader : public reader {
public:
    explicit loader(const env_lookup& env) : reader(env) {}

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
             [&](const at& f) {
                 fields(f, {{"file", to(cfg.prices.file)}});
             }},
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
    // --- sections ---------------------------------------------------------------------------

    void server(const at& a, server_config& s) {
        const field_table table{
            {"listen", [&](const at& f) { listen(f, s); }},
            {"threads", to(s.threads)},
            {"max_body_bytes", to(s.max_body_bytes, range::positive)},
            {"max_header_bytes", to(s.max_header_bytes, range::positive)},
            {"max_json_depth", to(s.max_json_depth, range::positive)},
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
                                   "redis+cluster:// URL, got " +
                                       in_quotes(s.redis));
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
            {"prewarm", to(p.prewarm)},
            {"api_version", to(p.api_version)},
            {"ca_file", to(p.ca_file)},
        };
        fields(a, table);
        if (a.node.IsMap() && a.node["api_key"].IsDefined() && a.node["api_keys"].IsDefined()) {
            error(join(a.path, "api_keys"), "set either api_key or api_keys, not both");
        }
        if (const unsigned most = std::min(max_prewarm, p.max_connections); p.prewarm > most) {
            error(join(a.path, "prewarm"),
                  "expected at most " + std::to_string(most) + " connections per worker (" +
                      std::to_string(max_prewarm) + ", and no more than max_connections), got " +
                      std::to_string(p.prewarm));
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
        const bool priced_here = m.input_per_mtok || m.output_per_mtok || m.cache_read_per_mtok ||
                                 m.cache_write_per_mtok || m.cache_write_1h_per_mtok ||
                                 m.long_context;
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
        if (root.IsNull()) {
            // A truncated or blanked file would otherwise load as a gateway with no keys,
            // providers or admin key: refused, so a reload keeps the config in force.
            out.errors.push_back((source.empty() ? std::string("the config") : source) +
                                 ": empty (nothing but blank lines or comments)");
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
