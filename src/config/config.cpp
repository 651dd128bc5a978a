// Lookups on a loaded config snapshot and the small parsers and names shared with the loader.

#include "michi/config/config.hpp"
#include "michi/config/price_table.hpp"

#include <array>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <string_view>
#include <utility>

namespace michi::config {
namespace {

template <class E, std::size_t N>
std::optional<E> parse_name(const std::array<std::pair<const char*, E>, N>& names,
                            std::string_view s) {
    for (const auto& [name, value] : names) {
        if (s == name) {
            return value;
        }
    }
    return std::nullopt;
}

template <class E, std::size_t N>
const char* name_of(const std::array<std::pair<const char*, E>, N>& names, E value) {
    for (const auto& [name, v] : names) {
        if (v == value) {
            return name;
        }
    }
    return "?";
}

constexpr std::array<std::pair<const char*, provider_type>, 5> provider_types{{
    {"openai", provider_type::openai},
    {"anthropic", provider_type::anthropic},
    {"gemini", provider_type::gemini},
    {"azure", provider_type::azure},
    {"echo", provider_type::echo},
}};

constexpr std::array<std::pair<const char*, key_class>, 3> key_classes_by_name{{
    {"developer", key_class::developer},
    {"application", key_class::application},
    {"agent", key_class::agent},
}};

constexpr std::array<std::pair<const char*, route_strategy>, 5> strategies{{
    {"fallback", route_strategy::fallback},
    {"cheapest", route_strategy::cheapest},
    {"weighted", route_strategy::weighted},
    {"least_busy", route_strategy::least_busy},
    {"latency", route_strategy::latency},
}};

constexpr std::uint64_t echo_context_window = 1000000;

} // namespace

namespace {

void apply(const price_entry& e, model_config& m) {
    m.input_per_mtok = e.input_per_mtok;
    m.output_per_mtok = e.output_per_mtok;
    m.cache_read_per_mtok = e.cache_read_per_mtok;
    m.cache_write_per_mtok = e.cache_write_per_mtok;
    m.cache_write_1h_per_mtok = e.cache_write_1h_per_mtok;
    m.long_context = e.long_context;
    m.context_window = e.context_window;
    m.as_of = e.as_of;
}

} // namespace

std::optional<model_config> config::find_model(const std::string& name) const {
    if (auto it = models.find(name); it != models.end()) {
        return it->second;
    }
    const auto slash = name.find('/');
    if (slash == std::string::npos || slash + 1 == name.size()) {
        return std::nullopt;
    }
    const auto prov = providers.find(name.substr(0, slash));
    if (prov == providers.end()) {
        return std::nullopt;
    }
    model_config m;
    m.name = name;
    m.provider = prov->first;
    m.model = name.substr(slash + 1);
    m.builtin = true;
    m.source = price_source::table;
    if (prov->second.type == provider_type::echo) {
        m.upstream = m.model;
        m.input_per_mtok = 0.0;
        m.output_per_mtok = 0.0;
        m.context_window = echo_context_window;
        return m;
    }
    const std::string_view type_name = litellm_provider_name(prov->second.type);
    const price_entry* shipped = shipped_price_table().find(m.provider, type_name, m.model);
    const price_entry* file =
        price_file ? price_file->find(m.provider, type_name, m.model) : nullptr;
    const price_entry* e = file != nullptr ? file : shipped;
    if (e == nullptr) {
        return std::nullopt;
    }
    apply(*e, m);
    m.source = file != nullptr ? price_file->source() : price_source::table;
    // The upstream name: the entry's own, else the shipped table's for the same model (a
    // LiteLLM file names none), else the model name.
    m.upstream = !e->upstream.empty()                               ? e->upstream
                 : shipped != nullptr && !shipped->upstream.empty() ? shipped->upstream
                                                                    : m.model;
    // Capabilities a file does not state: the shipped table's, else the config's defaults.
    const auto capability = [&](std::optional<bool> price_entry::*field) {
        if ((e->*field).has_value()) {
            return *(e->*field);
        }
        return shipped != nullptr && (shipped->*field).has_value() ? *(shipped->*field) : true;
    };
    m.supports_tools = capability(&price_entry::supports_tools);
    m.supports_images = capability(&price_entry::supports_images);
    if (!m.context_window && shipped != nullptr) {
        m.context_window = shipped->context_window;
    }
    return m;
}

limits config::effective_limits(const key_config& key) const {
    limits out = key.overrides;
    const auto it = key_classes.find(key.cls);
    if (it == key_classes.end()) {
        return out;
    }
    const auto fill = [](auto& value, const auto& fallback) {
        if (!value) {
            value = fallback;
        }
    };
    const limits& d = it->second;
    fill(out.rpm, d.rpm);
    fill(out.tpm, d.tpm);
    fill(out.daily_usd, d.daily_usd);
    fill(out.monthly_usd, d.monthly_usd);
    fill(out.loop_max, d.loop_max);
    fill(out.loop_window, d.loop_window);
    return out;
}

env_lookup process_env() {
    return [](const std::string& var) -> std::optional<std::string> {
        if (const char* v = std::getenv(var.c_str())) {
            return std::string(v);
        }
        return std::nullopt;
    };
}

std::optional<duration> parse_duration(const std::string& text) {
    std::uint64_t n = 0;
    const char* end = text.data() + text.size();
    const auto [rest, ec] = std::from_chars(text.data(), end, n);
    if (ec != std::errc{} || rest == text.data()) {
        return std::nullopt;
    }
    const std::string_view unit(rest, static_cast<std::size_t>(end - rest));
    std::uint64_t ms_per_unit = 0;
    if (unit == "ms") {
        ms_per_unit = 1;
    } else if (unit.empty() || unit == "s") {
        ms_per_unit = 1000;
    } else if (unit == "m") {
        ms_per_unit = 60 * 1000;
    } else if (unit == "h") {
        ms_per_unit = 60 * 60 * 1000;
    } else {
        return std::nullopt;
    }
    constexpr auto max_ms = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (n > max_ms / ms_per_unit) {
        return std::nullopt;
    }
    return duration(static_cast<duration::rep>(n * ms_per_unit));
}

std::optional<std::chrono::sys_days> parse_date(std::string_view text) {
    if (text.size() != 10 || text[4] != '-' || text[7] != '-') {
        return std::nullopt;
    }
    const auto number = [&](std::size_t at, std::size_t len) -> std::optional<unsigned> {
        unsigned v = 0;
        const char* first = text.data() + at;
        const auto [end, ec] = std::from_chars(first, first + len, v);
        return ec == std::errc{} && end == first + len ? std::optional(v) : std::nullopt;
    };
    const auto y = number(0, 4);
    const auto mo = number(5, 2);
    const auto d = number(8, 2);
    if (!y || !mo || !d) {
        return std::nullopt;
    }
    const std::chrono::year_month_day ymd{std::chrono::year(static_cast<int>(*y)),
                                          std::chrono::month(*mo), std::chrono::day(*d)};
    if (!ymd.ok()) {
        return std::nullopt;
    }
    return std::chrono::sys_days(ymd);
}

const char* to_string(provider_type t) { return name_of(provider_types, t); }
const char* to_string(price_source s) {
    switch (s) {
    case price_source::config: return "config";
    case price_source::table: return "table";
    case price_source::file: return "file";
    }
    return "?";
}
const char* to_string(key_class c) { return name_of(key_classes_by_name, c); }
const char* to_string(route_strategy s) { return name_of(strategies, s); }

std::optional<key_class> parse_key_class(const std::string& s) {
    return parse_name(key_classes_by_name, s);
}

std::optional<provider_type> parse_provider_type(const std::string& s) {
    return parse_name(provider_types, s);
}

std::optional<route_strategy> parse_route_strategy(const std::string& s) {
    return parse_name(strategies, s);
}

bool is_configured_model(const config& cfg, std::string_view name) {
    const std::string n(name);
    if (cfg.models.contains(n) || cfg.routes.contains(n)) {
        return true;
    }
    // A built-in model on a configured provider; an echo provider takes any name, which
    // makes none of them configured.
    const auto m = cfg.find_model(n);
    if (!m) {
        return false;
    }
    const auto p = cfg.providers.find(m->provider);
    return p != cfg.providers.end() && p->second.type != provider_type::echo;
}

} // namespace michi::config
