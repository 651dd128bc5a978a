#pragma once
// Typed reading of a YAML tree with every problem collected under its path: maps with a
// fixed set of fields, lists, ${VAR} interpolation, and scalars read as strings, numbers,
// durations, flags or one of a set of names. The config loader (loader.cpp) reads each
// section of the config with it. Private to src/config/.

#include "michi/config/config.hpp"
#include "michi/config/price_table.hpp"
#include "michi/core/secret.hpp"
#include "michi/core/url_text.hpp"
#include "michi/redis/redis_url.hpp"

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
template <class T>
concept ranged = std::unsigned_integral<T> || std::same_as<T, duration>;

inline std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
}

inline std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

inline std::string describe(const YAML::Node& n) {
    if (n.IsMap()) {
        return "a map";
    }
    if (n.IsSequence()) {
        return "a list";
    }
    return n.IsScalar() ? in_quotes(n.Scalar()) : "nothing";
}

inline bool is_var_name(std::string_view s) {
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
inline std::optional<std::pair<std::string, std::uint16_t>> split_host_port(std::string_view s) {
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

inline bool is_header_name(std::string_view s) {
    static constexpr std::string_view specials = "!#$%&'*+-.^_`|~";
    return !s.empty() && std::ranges::all_of(s, [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               specials.find(c) != std::string_view::npos;
    });
}

inline std::optional<std::string> parse_log_level(const std::string& s) {
    static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error"};
    return levels.contains(s) ? std::optional(s) : std::nullopt;
}

inline std::optional<std::string> parse_log_format(const std::string& s) {
    return s == "text" || s == "json" ? std::optional(s) : std::nullopt;
}

template <class T>
void set(T& out, std::optional<T> value) {
    if (value) {
        out = std::move(*value);
    }
}

template <class T>
void set(std::optional<T>& out, std::optional<T> value) {
    if (value) {
        out = std::move(value);
    }
}

template <class T>
void fill(std::optional<T>& out, const std::optional<T>& fallback) {
    if (!out) {
        out = fallback;
    }
}

// The reading toolkit: a section reader derives from it and reads through its helpers.
class reader {
public:
    explicit reader(const env_lookup& env) : env_(env) {}

    // The reads the section readers in other files (load_routing.cpp) use.
    void report(const std::string& path, const std::string& message) { error(path, message); }
    void read_fields(const at& a, const field_table& table) { fields(a, table); }
    void read_items(const at& a, const handler& fn) { items(a, fn); }
    std::optional<std::string> read_string(const at& f) { return str(f); }
    std::optional<std::uint64_t> read_count(const at& f, range r) {
        return integer<std::uint64_t>(f, r);
    }
    std::optional<double> read_number(const at& f) { return number(f); }
    std::optional<bool> read_flag(const at& f) { return flag(f); }
    std::optional<duration> read_duration(const at& f, range r) { return dur(f, r); }

protected:
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
    template <ranged T>
    handler to(T& out, range r = range::non_negative) {
        return [this, &out, r](const at& f) { set(out, scalar<T>(f, r)); };
    }
    template <ranged T>
    handler to(std::optional<T>& out, range r) {
        return [this, &out, r](const at& f) { set(out, scalar<T>(f, r)); };
    }
    template <class T>
    handler to(T& out, std::optional<T> (*parse)(const std::string&), const char* what,
               const char* expected) {
        return [=, this, &out](const at& f) { set(out, choice(f, parse, what, expected)); };
    }

    template <ranged T>
    std::optional<T> scalar(const at& f, range r) {
        if constexpr (std::same_as<T, duration>) {
            return dur(f, r);
        } else {
            return integer<T>(f, r);
        }
    }

    env_lookup env_;
    std::vector<std::string> errors_;
};

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
