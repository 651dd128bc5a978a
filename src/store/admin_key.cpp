// An admin key's shapes: as the auth and guard code read keys, as the JSON text that carries
// it between replicas, and the lookups of a published snapshot of them.

#include "michi/store/key_registry.hpp"
#include "michi/core/json_parse.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

namespace michi::store {

config::key_config admin_key::as_key_config() const {
    config::key_config c;
    c.id = id;
    c.cls = cls;
    c.secret_sha256 = revoked ? "" : secret_sha256;
    c.models = models;
    c.overrides = overrides;
    return c;
}

std::string key_to_json(const admin_key& k) {
    nlohmann::json j = {{"class", config::to_string(k.cls)},
                        {"secret_sha256", k.secret_sha256},
                        {"models", k.models},
                        {"created_ms", k.created_ms}};
    const auto& o = k.overrides;
    for (const auto& [name, v] :
         {std::pair{"rpm", o.rpm}, {"tpm", o.tpm}, {"loop_max", o.loop_max}}) {
        if (v) {
            j[name] = *v;
        }
    }
    for (const auto& [name, v] :
         {std::pair{"daily_usd", o.daily_usd}, {"monthly_usd", o.monthly_usd}}) {
        if (v) {
            j[name] = *v;
        }
    }
    if (o.loop_window) {
        j["loop_window_ms"] = o.loop_window->count();
    }
    return j.dump();
}

std::optional<admin_key> key_from_json(const std::string& id, std::string_view text,
                                       std::string& why) {
    const auto j = json_parse::parse_value(text);
    if (!j.is_object()) {
        why = "not a JSON object";
        return std::nullopt;
    }
    admin_key k;
    k.id = id;
    const auto cls = config::parse_key_class(j.value("class", std::string()));
    if (!cls) {
        why = "unknown class";
        return std::nullopt;
    }
    k.cls = *cls;
    k.secret_sha256 = j.value("secret_sha256", std::string());
    if (!is_sha256_hex(k.secret_sha256)) {
        why = "secret_sha256 is not 64 hex digits";
        return std::nullopt;
    }
    const auto models = j.find("models");
    if (models != j.end()) {
        if (!models->is_array()) {
            why = "models is not an array";
            return std::nullopt;
        }
        for (const auto& m : *models) {
            if (!m.is_string()) {
                why = "models is not an array of strings";
                return std::nullopt;
            }
            k.models.push_back(m.get<std::string>());
        }
    }
    auto& o = k.overrides;
    for (const auto& [name, v] :
         {std::pair{"rpm", &o.rpm}, {"tpm", &o.tpm}, {"loop_max", &o.loop_max}}) {
        if (const auto f = j.find(name); f != j.end() && f->is_number_unsigned()) {
            *v = f->get<std::uint64_t>();
        }
    }
    for (const auto& [name, v] :
         {std::pair{"daily_usd", &o.daily_usd}, {"monthly_usd", &o.monthly_usd}}) {
        if (const auto f = j.find(name); f != j.end() && f->is_number()) {
            *v = f->get<double>();
        }
    }
    if (const auto f = j.find("loop_window_ms"); f != j.end() && f->is_number_integer()) {
        o.loop_window = config::duration(f->get<std::int64_t>());
    }
    if (const auto f = j.find("created_ms"); f != j.end() && f->is_number_integer()) {
        k.created_ms = f->get<std::int64_t>();
    }
    return k;
}

const admin_key* key_snapshot::find_id(const std::string& id) const {
    const auto it =
        std::lower_bound(keys.begin(), keys.end(), id,
                         [](const admin_key& k, const std::string& v) { return k.id < v; });
    return it != keys.end() && it->id == id ? &*it : nullptr;
}

const admin_key* key_snapshot::find_digest(const std::string& digest) const {
    const auto it = by_digest.find(digest);
    return it != by_digest.end() ? &it->second : nullptr;
}

} // namespace michi::store
