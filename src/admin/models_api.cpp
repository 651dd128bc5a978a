// GET /admin/models: the prices behind every charge, with their source and date.

#include "michi/admin/models_api.hpp"

#include "michi/config/price_table.hpp"

#include <set>

namespace michi::admin {
namespace {

using json = nlohmann::json;

json price(const std::optional<double>& p) { return p ? json(*p) : json(nullptr); }

json long_context_json(const std::optional<config::long_context_prices>& lc) {
    if (!lc) {
        return nullptr;
    }
    return {{"above_input_tokens", lc->above_input_tokens},
            {"input_per_mtok", price(lc->input_per_mtok)},
            {"output_per_mtok", price(lc->output_per_mtok)},
            {"cache_read_per_mtok", price(lc->cache_read_per_mtok)},
            {"cache_write_per_mtok", price(lc->cache_write_per_mtok)},
            {"cache_write_1h_per_mtok", price(lc->cache_write_1h_per_mtok)}};
}

// The price fields every item carries, from anything holding them.
template <class T>
void put_prices(json& out, const T& p) {
    out["input_per_mtok"] = price(p.input_per_mtok);
    out["output_per_mtok"] = price(p.output_per_mtok);
    out["cache_read_per_mtok"] = price(p.cache_read_per_mtok);
    out["cache_write_per_mtok"] = price(p.cache_write_per_mtok);
    out["cache_write_1h_per_mtok"] = price(p.cache_write_1h_per_mtok);
    out["long_context"] = long_context_json(p.long_context);
}

json model_json(const config::model_config& m) {
    json out = {{"id", m.name},
                {"object", "model"},
                {"provider", m.provider},
                {"upstream", m.upstream},
                {"priced", m.input_per_mtok.has_value() && m.output_per_mtok.has_value()},
                {"source", config::to_string(m.source)},
                {"as_of", m.as_of.empty() ? json(nullptr) : json(m.as_of)}};
    put_prices(out, m);
    out["context_window"] = m.context_window ? json(*m.context_window) : json(nullptr);
    out["supports_tools"] = m.supports_tools;
    out["supports_images"] = m.supports_images;
    return out;
}

void add_entries(json& out, const config::price_table& t) {
    const char* source = config::to_string(t.source());
    for (const auto& e : t.entries()) {
        json item = {{"id", e.name},
                     {"source", source},
                     {"as_of", e.as_of},
                     {"upstream", e.upstream.empty() ? json(nullptr) : json(e.upstream)}};
        put_prices(item, e);
        item["context_window"] = e.context_window ? json(*e.context_window) : json(nullptr);
        item["supports_tools"] = e.supports_tools ? json(*e.supports_tools) : json(nullptr);
        item["supports_images"] = e.supports_images ? json(*e.supports_images) : json(nullptr);
        out.push_back(std::move(item));
    }
}

const char* format_name(config::price_format f) {
    return f == config::price_format::litellm ? "litellm" : "michi";
}

} // namespace

json models_json(const config::config& cfg) {
    json data = json::array();
    std::set<std::string> seen;
    const auto add = [&](const std::string& name) {
        if (!seen.insert(name).second) {
            return;
        }
        if (const auto m = cfg.find_model(name)) {
            data.push_back(model_json(*m));
        }
    };
    for (const auto& [name, m] : cfg.models) {
        add(name);
    }
    for (const auto& [name, r] : cfg.routes) {
        for (const auto& target : r.targets) {
            add(target);
        }
    }
    json table = json::array();
    json prices = {{"file", cfg.prices.file}};
    if (cfg.price_file) {
        add_entries(table, *cfg.price_file);
        prices["file_format"] = format_name(cfg.price_file->format());
        prices["file_newest_as_of"] = cfg.price_file->newest_as_of();
    }
    const auto& shipped = config::shipped_price_table();
    add_entries(table, shipped);
    prices["table_newest_as_of"] = shipped.newest_as_of();
    return {{"object", "list"}, {"prices", prices}, {"data", data}, {"table", table}};
}

} // namespace michi::admin
