// The config's sections for load balancing and the response cache: provider key pools, route
// weights and cache policies, and the cache's store.

#include "yaml_reader.hpp"

namespace michi::config::yaml {
namespace {

// A provider key's text: read, or left empty by its variable (its name then noted).
void add_key(reader& r, const at& f, std::optional<std::string> text, provider_key k,
             provider_config& p) {
    if (!text) {
        return; // null or wrong (reported)
    }
    if (text->empty()) {
        const auto variable = first_variable(f);
        if (variable.empty()) {
            r.report(f.path, "empty API key");
        } else if (p.api_key_env.empty()) {
            p.api_key_env = variable; // (the provider is off when no key is left)
        }
        return;
    }
    k.key = secret(std::move(*text));
    p.api_keys.push_back(std::move(k));
}

} // namespace

std::string first_variable(const at& f) {
    if (!f.node.IsScalar()) {
        return {};
    }
    const std::string& raw = f.node.Scalar();
    const auto open = raw.find("${");
    if (open == std::string::npos) {
        return {};
    }
    const auto end = raw.find_first_of(":}", open + 2);
    return end == std::string::npos ? std::string() : raw.substr(open + 2, end - open - 2);
}

void read_api_key(reader& r, const at& f, provider_config& p) {
    const auto text = r.read_string(f);
    if (text && !text->empty()) {
        p.api_keys.push_back({secret(*text), {}, {}});
    }
    p.api_key_env = first_variable(f);
}

void read_api_keys(reader& r, const at& a, provider_config& p) {
    if (a.node.IsSequence() && a.node.size() == 0) {
        r.report(a.path, "expected at least one key");
        return;
    }
    r.read_items(a, [&](const at& f) {
        provider_key k;
        if (!f.node.IsMap()) {
            add_key(r, f, r.read_string(f), std::move(k), p);
            return;
        }
        std::optional<std::string> text;
        at key_node{YAML::Node(), join(f.path, "key")};
        r.read_fields(f, {{"key",
                           [&](const at& k_at) {
                               key_node = k_at;
                               text = r.read_string(k_at);
                           }},
                          {"rpm", [&](const at& n) { k.rpm = r.read_count(n, range::positive); }},
                          {"tpm", [&](const at& n) { k.tpm = r.read_count(n, range::positive); }}});
        if (!key_node.node.IsDefined() || key_node.node.IsNull()) {
            r.report(key_node.path, "missing required field");
            return;
        }
        add_key(r, key_node, std::move(text), std::move(k), p);
    });
}

void read_weights(reader& r, const at& a, std::vector<double>& out) {
    // (a bad one is reported here and counts as 1; a 0 by the validation)
    r.read_items(a, [&](const at& w) { out.push_back(r.read_number(w).value_or(1)); });
}

void read_cache_policy(reader& r, const at& a, std::optional<cache_policy>& out) {
    cache_policy c;
    r.read_fields(a,
                  {{"ttl",
                    [&](const at& f) {
                        if (auto d = r.read_duration(f, range::positive)) {
                            c.ttl = *d;
                        }
                    }},
                   {"nondeterministic",
                    [&](const at& f) { c.nondeterministic = r.read_flag(f).value_or(false); }},
                   {"per_key", [&](const at& f) { c.per_key = r.read_flag(f).value_or(false); }}});
    out = c;
}

void read_cache_store(reader& r, const at& a, cache_config& out) {
    const auto bytes = [&](std::size_t& to) {
        return [&r, out_bytes = &to](const at& f) {
            if (const auto n = r.read_count(f, range::positive)) {
                *out_bytes = static_cast<std::size_t>(*n);
            }
        };
    };
    r.read_fields(a,
                  {{"max_bytes", bytes(out.max_bytes)},
                   {"max_entry_bytes", bytes(out.max_entry_bytes)},
                   {"shared", [&](const at& f) { out.shared = r.read_flag(f).value_or(true); }}});
}

} // namespace michi::config::yaml
