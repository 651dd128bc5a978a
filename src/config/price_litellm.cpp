// LiteLLM's model_prices_and_context_window.json, read as it is: its chat, responses and
// embedding entries that carry token prices become price entries; everything else in it is
// skipped. Prices are USD per token there and per million tokens here.

#include "michi/config/price_table.hpp"
#include "michi/core/json_scan.hpp"

#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <map>

namespace michi::config {
namespace {

using json = nlohmann::json;

// A key or value for an error message: bounded, quoted by the caller.
std::string shown(std::string_view s) {
    constexpr std::size_t max = 120;
    std::string out;
    for (const char c : s.substr(0, max)) {
        out += static_cast<unsigned char>(c) < 0x20 ? '?' : c;
    }
    return s.size() > max ? out + "..." : out;
}

// Reads one entry; errors name the file and the entry.
class entry_reader {
public:
    entry_reader(const std::string& file, const std::string& key, const json& v,
                 std::vector<std::string>& errors)
        : file_(file), key_(key), v_(v), errors_(errors) {}

    // A USD-per-token field as USD per million tokens (to the micro-dollar, the precision the
    // cost arithmetic keeps); nullopt when absent or null. A wrong value is an error.
    std::optional<double> per_mtok(const std::string& field) {
        const auto it = v_.find(field);
        if (it == v_.end() || it->is_null()) {
            return std::nullopt;
        }
        if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 0) {
            error(field, "expected a non-negative number, got " +
                             shown(it->dump(-1, ' ', false, json::error_handler_t::replace)));
            return std::nullopt;
        }
        return std::round(it->get<double>() * 1e12) / 1e6;
    }

    std::optional<bool> flag(const char* field) const {
        const auto it = v_.find(field);
        return it != v_.end() && it->is_boolean() ? std::optional(it->get<bool>()) : std::nullopt;
    }

    // max_input_tokens when it is a positive whole number (it is a description in sample_spec).
    std::optional<std::uint64_t> context_window() const {
        const auto it = v_.find("max_input_tokens");
        if (it == v_.end()) {
            return std::nullopt;
        }
        if (it->is_number_unsigned() && it->get<std::uint64_t>() > 0) {
            return it->get<std::uint64_t>();
        }
        if (it->is_number_float()) {
            const double d = it->get<double>();
            if (std::isfinite(d) && d >= 1 && d < 1e15 && d == std::floor(d)) {
                return static_cast<std::uint64_t>(d);
            }
        }
        return std::nullopt;
    }

    // The long-context tier: the prices named "<kind>_above_<N>k_tokens", at the lowest N.
    std::optional<long_context_prices> long_context() {
        struct tier {
            std::optional<double> in, out, read, write, write_1h;
        };
        std::map<std::uint64_t, tier> tiers;
        constexpr std::string_view above = "_above_";
        constexpr std::string_view tail = "k_tokens";
        for (const auto& [k, value] : v_.items()) {
            const std::string_view key = k;
            const auto at = key.rfind(above);
            if (at == std::string_view::npos || !key.ends_with(tail)) {
                continue;
            }
            const std::string_view digits =
                key.substr(at + above.size(), key.size() - at - above.size() - tail.size());
            std::uint64_t thousands = 0;
            const auto [end, ec] =
                std::from_chars(digits.data(), digits.data() + digits.size(), thousands);
            if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() ||
                thousands == 0 || thousands > 1000000000) {
                continue;
            }
            const std::string_view kind = key.substr(0, at);
            tier& t = tiers[thousands * 1000];
            if (kind == "input_cost_per_token") {
                t.in = per_mtok(k);
            } else if (kind == "output_cost_per_token") {
                t.out = per_mtok(k);
            } else if (kind == "cache_read_input_token_cost") {
                t.read = per_mtok(k);
            } else if (kind == "cache_creation_input_token_cost") {
                t.write = per_mtok(k);
            } else if (kind == "cache_creation_input_token_cost_above_1hr") {
                t.write_1h = per_mtok(k);
            }
        }
        for (const auto& [threshold, t] : tiers) {
            if (t.in || t.out || t.read || t.write || t.write_1h) {
                return long_context_prices{threshold, t.in, t.out, t.read, t.write, t.write_1h};
            }
        }
        return std::nullopt;
    }

private:
    void error(const std::string& field, const std::string& message) {
        errors_.push_back(file_ + ": \"" + shown(key_) + "\"." + field + ": " + message);
    }

    const std::string& file_;
    const std::string& key_;
    const json& v_;
    std::vector<std::string>& errors_;
};

bool is_priced_mode(const json& v, bool& embedding) {
    const auto mode = v.find("mode");
    if (mode == v.end() || mode->is_null()) {
        return true; // older entries name no mode: chat models
    }
    if (!mode->is_string()) {
        return false;
    }
    const auto& m = mode->get_ref<const std::string&>();
    embedding = m == "embedding";
    return m == "chat" || m == "responses" || embedding;
}

} // namespace

price_load_result parse_litellm_prices(std::string_view text, const std::string& name,
                                       price_source source, const std::string& as_of) {
    price_load_result out;
    try {
        if (text.size() > max_price_file_bytes) {
            out.errors.push_back(name + ": larger than " +
                                 std::to_string(max_price_file_bytes >> 20) + " MiB");
            return out;
        }
        if (json_scan::nesting_depth(text, max_price_file_depth) > max_price_file_depth) {
            out.errors.push_back(name + ": nested deeper than " +
                                 std::to_string(max_price_file_depth) + " levels");
            return out;
        }
        json root;
        try {
            root = json::parse(text); // throws saying where the text stops being JSON
        } catch (const json::exception& e) {
            out.errors.push_back(name + ": not valid JSON: " + e.what());
            return out;
        }
        if (!root.is_object()) {
            out.errors.push_back(name + ": expected a JSON object of models");
            return out;
        }
        std::vector<price_entry> entries;
        for (const auto& [key, v] : root.items()) {
            bool embedding = false;
            if (key == "sample_spec" || key.empty() || !v.is_object() ||
                !is_priced_mode(v, embedding)) {
                continue;
            }
            entry_reader r(name, key, v, out.errors);
            price_entry e;
            e.name = key;
            e.input_per_mtok = r.per_mtok("input_cost_per_token");
            e.output_per_mtok = r.per_mtok("output_cost_per_token");
            e.cache_read_per_mtok = r.per_mtok("cache_read_input_token_cost");
            if (!e.cache_read_per_mtok) {
                e.cache_read_per_mtok = r.per_mtok("input_cost_per_token_cache_hit"); // DeepSeek
            }
            e.cache_write_per_mtok = r.per_mtok("cache_creation_input_token_cost");
            e.cache_write_1h_per_mtok = r.per_mtok("cache_creation_input_token_cost_above_1hr");
            e.long_context = r.long_context();
            if (embedding && e.input_per_mtok && !e.output_per_mtok) {
                e.output_per_mtok = 0.0;
            }
            if (!e.input_per_mtok || !e.output_per_mtok) {
                continue; // no token prices: images, audio, per-second models
            }
            e.context_window = r.context_window();
            const std::optional<bool> no = false;
            e.supports_tools = embedding ? no : r.flag("supports_function_calling");
            e.supports_images = embedding ? no : r.flag("supports_vision");
            e.as_of = as_of;
            entries.push_back(std::move(e));
        }
        if (out.errors.empty()) {
            out.table = std::make_shared<const price_table>(source, price_format::litellm, name,
                                                            std::move(entries));
        }
    } catch (const std::exception& e) {
        out.table.reset();
        out.errors.push_back(name + ": cannot read the price file: " + e.what());
    }
    return out;
}

} // namespace michi::config
