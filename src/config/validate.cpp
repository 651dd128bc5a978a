// Cross-field checks on a built config: what no single field can tell on its own.

#include "michi/config/config.hpp"
#include "michi/core/json_parse.hpp"
#include "michi/core/safe_text.hpp"

#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace michi::config {
namespace {

bool is_http_url(std::string_view url) {
    return (url.starts_with("http://") && url.size() > 7) ||
           (url.starts_with("https://") && url.size() > 8);
}

bool is_key_id(std::string_view id) {
    if (id.empty()) {
        return false;
    }
    for (const char c : id) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

std::string key_path(std::size_t i) { return "keys[" + std::to_string(i) + "]"; }

// The shortest admin key accepted: the admin API can mint keys and change routes.
constexpr std::size_t min_admin_key_size = 32;

// A value sent upstream in a header field as configured: no control characters (they would
// end the field), and no longer than a header field Michi writes.
std::optional<std::string> header_value_problem(std::string_view v) {
    for (const char c : v) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && u != '\t') || u == 0x7F) {
            return "contains a control character (a line break, NUL, ...)";
        }
    }
    if (v.size() > safe_text::header_value_max) {
        return "longer than " + std::to_string(safe_text::header_value_max) + " bytes";
    }
    return std::nullopt;
}

void check_providers(const config& cfg, std::vector<std::string>& errors) {
    for (const auto& [name, p] : cfg.providers) {
        const std::string path = "providers." + name;
        const std::string type = to_string(p.type);
        if (p.type == provider_type::echo) {
            if (!p.base_url.empty()) {
                errors.push_back(path + ".base_url: not used by provider type echo");
            }
        } else if (p.base_url.empty()) {
            errors.push_back(path + ".base_url: required for provider type " + type);
        } else if (!is_http_url(p.base_url)) {
            errors.push_back(path + ".base_url: expected an http:// or https:// URL, got \"" +
                             p.base_url + "\"");
        }
        if (p.type != provider_type::openai && p.type != provider_type::azure &&
            (p.responses_api || !p.chat_api)) {
            errors.push_back(path + ".apis: only openai and azure providers choose their APIs");
        }
        for (std::size_t i = 0; i < p.api_keys.size(); ++i) {
            if (const auto why = header_value_problem(p.api_keys[i].key.reveal())) {
                errors.push_back(path +
                                 (p.api_keys.size() == 1
                                      ? ".api_key: "
                                      : ".api_keys[" + std::to_string(i) + "]: ") +
                                 *why);
            }
        }
        for (const auto& [field, value] : p.headers) {
            if (const auto why = header_value_problem(value)) {
                errors.push_back(path + ".headers." + field + ": " + *why);
            }
        }
        if (p.type == provider_type::azure && p.api_version.empty()) {
            errors.push_back(path + ".api_version: required for provider type azure");
        } else if (p.type != provider_type::azure && !p.api_version.empty()) {
            errors.push_back(path + ".api_version: not used by provider type " + type);
        }
    }
}

// A weighted route's weights: one positive number per target (none: equal weights).
void check_weights(const std::string& name, const route_config& r,
                   std::vector<std::string>& errors) {
    const std::string path = "routes." + name + ".weights";
    if (r.weights.empty()) {
        return;
    }
    if (r.strategy != route_strategy::weighted) {
        errors.push_back(path + ": only used with strategy: weighted");
    } else if (r.weights.size() != r.targets.size()) {
        errors.push_back(path + ": " + std::to_string(r.weights.size()) + " weights for " +
                         std::to_string(r.targets.size()) + " targets (one per target)");
    }
    for (std::size_t i = 0; i < r.weights.size(); ++i) {
        if (!(r.weights[i] > 0) || !std::isfinite(r.weights[i])) {
            errors.push_back(path + "[" + std::to_string(i) + "]: must be a positive number");
        }
    }
}

void check_models_and_routes(const config& cfg, std::vector<std::string>& errors) {
    for (const auto& [name, m] : cfg.models) {
        if (!cfg.providers.contains(m.provider)) {
            errors.push_back("models." + name + ": unknown provider \"" + m.provider + "\"");
        }
    }
    for (const auto& [name, r] : cfg.routes) {
        const std::string path = "routes." + name + ".targets";
        if (r.targets.empty()) {
            errors.push_back(path + ": must list at least one model");
        }
        for (std::size_t i = 0; i < r.targets.size(); ++i) {
            if (!cfg.find_model(r.targets[i])) {
                errors.push_back(path + "[" + std::to_string(i) + "]: unknown model \"" +
                                 r.targets[i] + "\"");
            }
        }
        check_weights(name, r, errors);
    }
}

void check_keys(const config& cfg, std::vector<std::string>& errors) {
    std::map<std::string, std::size_t> ids;     // id -> first index
    std::map<std::string, std::size_t> digests; // digest -> first index
    for (std::size_t i = 0; i < cfg.keys.size(); ++i) {
        const key_config& k = cfg.keys[i];
        const std::string path = key_path(i);
        if (k.id.empty()) {
            errors.push_back(path + ".id: missing required field");
        } else if (!is_key_id(k.id)) {
            errors.push_back(path + ".id: invalid key id \"" + k.id +
                             "\" (allowed: letters, digits, \".\", \"_\" and \"-\")");
        } else if (const auto [it, fresh] = ids.emplace(k.id, i); !fresh) {
            errors.push_back(path + ".id: duplicate key id \"" + k.id + "\" (also " +
                             key_path(it->second) + ")");
        }
        if (k.secret_sha256.empty()) {
            continue;
        }
        if (const auto [it, fresh] = digests.emplace(k.secret_sha256, i); !fresh) {
            errors.push_back(path + ": same secret as " + key_path(it->second) + " (\"" +
                             cfg.keys[it->second].id + "\")");
        }
    }
}

} // namespace

std::vector<std::string> validate(const config& cfg) {
    std::vector<std::string> errors;
    if (cfg.server.tls.cert_file.empty() != cfg.server.tls.key_file.empty()) {
        errors.emplace_back("server.tls: cert_file and key_file must be set together");
    }
    if (const auto d = cfg.server.max_json_depth;
        d < json_parse::min_max_depth || d > json_parse::max_max_depth) {
        errors.push_back("server.max_json_depth: expected " +
                         std::to_string(json_parse::min_max_depth) + " to " +
                         std::to_string(json_parse::max_max_depth) + " levels, got " +
                         std::to_string(d));
    }
    if (const auto n = cfg.admin.key.reveal().size(); n != 0 && n < min_admin_key_size) {
        errors.push_back("admin.key: too short (" + std::to_string(n) + " characters; at least " +
                         std::to_string(min_admin_key_size) +
                         ", e.g. `openssl rand -hex 24`; empty turns the admin API off)");
    }
    check_providers(cfg, errors);
    check_models_and_routes(cfg, errors);
    check_keys(cfg, errors);
    return errors;
}

} // namespace michi::config
