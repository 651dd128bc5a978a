// Michi's price file format (config/prices.yaml): a `models:` map of entries, each with its
// prices (USD per million tokens), capabilities and the date the prices were true. Every
// problem is reported with the file and the entry's path, worded as config errors are.

#include "michi/config/price_table.hpp"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <functional>
#include <set>
#include <utility>

namespace michi::config {
namespace {

using field_reader = std::function<void(const YAML::Node&, const std::string&)>;
using field_list = std::vector<std::pair<std::string_view, field_reader>>;

// Reads one price file, collecting every error.
class reader {
public:
    explicit reader(const std::string& file) : file_(file) {}

    std::vector<price_entry> read(const YAML::Node& root) {
        std::vector<price_entry> out;
        if (!root.IsMap() && !root.IsNull()) {
            error("", "expected a map with a \"models\" field");
            return out;
        }
        bool has_models = false;
        for (const auto& kv : root) {
            const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
            if (key != "models") {
                error(key.empty() ? "" : key, "unknown field (a price file has only \"models\")");
                continue;
            }
            has_models = true;
            models(kv.second, out);
        }
        if (!has_models) {
            error("models", "missing required field");
        }
        return out;
    }

    std::vector<std::string> take_errors() { return std::move(errors_); }

private:
    void error(const std::string& path, const std::string& message) {
        errors_.push_back(file_ + ": " + (path.empty() ? "top level" : path) + ": " + message);
    }

    static std::string describe(const YAML::Node& n) {
        if (n.IsMap()) {
            return "a map";
        }
        if (n.IsSequence()) {
            return "a list";
        }
        return n.IsScalar() ? "\"" + n.Scalar() + "\"" : "nothing";
    }

    // fn(key, value, path) for each entry of a map, with duplicate and non-name keys refused.
    void entries(
        const YAML::Node& n, const std::string& path,
        const std::function<void(const std::string&, const YAML::Node&, const std::string&)>& fn) {
        if (!n.IsMap()) {
            error(path, "expected a map, got " + describe(n));
            return;
        }
        std::set<std::string> seen;
        for (const auto& kv : n) {
            if (!kv.first.IsScalar()) {
                error(path, "expected a name as key, got " + describe(kv.first));
                continue;
            }
            const std::string key = kv.first.Scalar();
            const std::string child = path + "." + key;
            if (!seen.insert(key).second) {
                error(child, "defined twice");
                continue;
            }
            fn(key, kv.second, child);
        }
    }

    void fields(const YAML::Node& n, const std::string& path, const field_list& table) {
        entries(n, path, [&](const std::string& key, const YAML::Node& v, const std::string& p) {
            for (const auto& [name, read] : table) {
                if (key == name) {
                    if (!v.IsNull()) {
                        read(v, p);
                    }
                    return;
                }
            }
            error(p, "unknown field");
        });
    }

    std::optional<std::string> scalar(const YAML::Node& n, const std::string& path,
                                      const std::string& what) {
        if (!n.IsScalar()) {
            error(path, "expected " + what + ", got " + describe(n));
            return std::nullopt;
        }
        return n.Scalar();
    }

    field_reader price(std::optional<double>& out) {
        return [this, &out](const YAML::Node& n, const std::string& path) {
            const std::string what = "a non-negative number";
            const auto t = scalar(n, path, what);
            if (!t) {
                return;
            }
            double v = 0;
            const char* end = t->data() + t->size();
            const auto [p, ec] = std::from_chars(t->data(), end, v);
            if (t->empty() || ec != std::errc{} || p != end || !std::isfinite(v) || v < 0) {
                error(path, "expected " + what + ", got \"" + *t + "\"");
                return;
            }
            out = v;
        };
    }

    field_reader count(std::optional<std::uint64_t>& out) {
        return [this, &out](const YAML::Node& n, const std::string& path) {
            const std::string what = "a positive integer";
            const auto t = scalar(n, path, what);
            if (!t) {
                return;
            }
            std::uint64_t v = 0;
            const char* end = t->data() + t->size();
            const auto [p, ec] = std::from_chars(t->data(), end, v);
            if (t->empty() || ec != std::errc{} || p != end || v == 0) {
                error(path, "expected " + what + ", got \"" + *t + "\"");
                return;
            }
            out = v;
        };
    }

    field_reader flag(std::optional<bool>& out) {
        return [this, &out](const YAML::Node& n, const std::string& path) {
            const auto t = scalar(n, path, "true or false");
            if (t && (*t == "true" || *t == "false")) {
                out = *t == "true";
            } else if (t) {
                error(path, "expected true or false, got \"" + *t + "\"");
            }
        };
    }

    void models(const YAML::Node& n, std::vector<price_entry>& out) {
        if (n.IsNull()) {
            return;
        }
        entries(n, "models",
                [&](const std::string& name, const YAML::Node& v, const std::string& path) {
                    if (name.empty() || name.front() == '/' || name.back() == '/') {
                        error(path,
                              "expected a model name as clients write it after \"provider/\"");
                        return;
                    }
                    price_entry e;
                    e.name = name;
                    if (entry(v, path, e)) {
                        out.push_back(std::move(e));
                    }
                });
    }

    bool entry(const YAML::Node& n, const std::string& path, price_entry& e) {
        const std::size_t errors_before = errors_.size();
        const field_list table{
            {"upstream",
             [&](const YAML::Node& v, const std::string& p) {
                 e.upstream = scalar(v, p, "a string").value_or("");
             }},
            {"as_of",
             [&](const YAML::Node& v, const std::string& p) {
                 const auto t = scalar(v, p, "a date like 2026-12-01");
                 if (t && parse_date(*t)) {
                     e.as_of = *t;
                 } else if (t) {
                     error(p, "expected a date like 2026-12-01, got \"" + *t + "\"");
                 }
             }},
            {"input_per_mtok", price(e.input_per_mtok)},
            {"output_per_mtok", price(e.output_per_mtok)},
            {"cache_read_per_mtok", price(e.cache_read_per_mtok)},
            {"cache_write_per_mtok", price(e.cache_write_per_mtok)},
            {"cache_write_1h_per_mtok", price(e.cache_write_1h_per_mtok)},
            {"long_context",
             [&](const YAML::Node& v, const std::string& p) { long_context(v, p, e); }},
            {"context_window", count(e.context_window)},
            {"supports_tools", flag(e.supports_tools)},
            {"supports_images", flag(e.supports_images)},
        };
        fields(n, path, table);
        if (errors_.size() != errors_before) {
            return false;
        }
        for (const auto& [field, set] :
             {std::pair{"as_of", !e.as_of.empty()},
              std::pair{"input_per_mtok", e.input_per_mtok.has_value()},
              std::pair{"output_per_mtok", e.output_per_mtok.has_value()}}) {
            if (!set) {
                error(path + "." + field, "missing required field");
            }
        }
        return errors_.size() == errors_before;
    }

    void long_context(const YAML::Node& n, const std::string& path, price_entry& e) {
        long_context_prices lc;
        std::optional<std::uint64_t> above;
        const field_list table{
            {"above_input_tokens", count(above)},
            {"input_per_mtok", price(lc.input_per_mtok)},
            {"output_per_mtok", price(lc.output_per_mtok)},
            {"cache_read_per_mtok", price(lc.cache_read_per_mtok)},
            {"cache_write_per_mtok", price(lc.cache_write_per_mtok)},
            {"cache_write_1h_per_mtok", price(lc.cache_write_1h_per_mtok)},
        };
        fields(n, path, table);
        if (!above) {
            if (n.IsMap()) {
                error(path + ".above_input_tokens", "missing required field");
            }
            return;
        }
        lc.above_input_tokens = *above;
        e.long_context = lc;
    }

    const std::string& file_;
    std::vector<std::string> errors_;
};

} // namespace

price_load_result parse_michi_prices(std::string_view text, const std::string& name,
                                     price_source source) {
    price_load_result out;
    try {
        if (text.size() > max_price_file_bytes) {
            out.errors.push_back(name + ": larger than " +
                                 std::to_string(max_price_file_bytes >> 20) + " MiB");
            return out;
        }
        YAML::Node root;
        try {
            root = YAML::Load(std::string(text));
        } catch (const YAML::Exception& e) {
            const bool deep = dynamic_cast<const YAML::DeepRecursion*>(&e) != nullptr;
            const std::string what = deep ? "nested too deeply" : e.msg;
            out.errors.push_back(name + ": " +
                                 (e.mark.is_null()
                                      ? "syntax error: " + what
                                      : "syntax error at line " + std::to_string(e.mark.line + 1) +
                                            ", column " + std::to_string(e.mark.column + 1) + ": " +
                                            what));
            return out;
        }
        reader r(name);
        auto entries = r.read(root);
        out.errors = r.take_errors();
        if (out.errors.empty()) {
            out.table = std::make_shared<const price_table>(source, price_format::michi, name,
                                                            std::move(entries));
        }
    } catch (const std::exception& e) {
        out.table.reset();
        out.errors.push_back(name + ": cannot read the price file: " + e.what());
    }
    return out;
}

} // namespace michi::config
