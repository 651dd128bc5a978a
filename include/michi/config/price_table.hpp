#pragma once
// Price tables: the one shipped with the gateway (config/prices.yaml, embedded at build time)
// and the newer file an operator names in prices.file, in the same format or as LiteLLM's
// model_prices_and_context_window.json. Loaded by the config loader, never on a worker loop.

#include "michi/config/config.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace michi::config {

// One model's prices and capabilities as a price table gives them (USD per million tokens).
struct price_entry {
    std::string name;     // the key as written in the file
    std::string upstream; // name sent upstream; empty: the model's own name
    std::optional<double> input_per_mtok;
    std::optional<double> output_per_mtok;
    std::optional<double> cache_read_per_mtok;
    std::optional<double> cache_write_per_mtok;
    std::optional<double> cache_write_1h_per_mtok;
    std::optional<long_context_prices> long_context;
    std::optional<std::uint64_t> context_window;
    std::optional<bool> supports_tools; // unset: the file does not say
    std::optional<bool> supports_images;
    std::string as_of; // "YYYY-MM-DD"
};

enum class price_format { michi, litellm };

// A loaded price table: entries in file order, found by name.
class price_table {
public:
    price_table(price_source source, price_format format, std::string path,
                std::vector<price_entry> entries);

    // The entry that prices `model` for the configured provider named `provider`, of LiteLLM
    // provider name `type_name` (openai, anthropic, gemini, azure). In Michi's format entries
    // are named as clients name models after "provider/", so only `model` is looked up. In
    // LiteLLM's, keys are bare names or "litellm_provider/name": "provider/model" is looked up
    // first, then "type_name/model", then the bare "model". nullptr when none matches.
    const price_entry* find(std::string_view provider, std::string_view type_name,
                            std::string_view model) const;
    const price_entry* find_exact(std::string_view name) const;

    const std::vector<price_entry>& entries() const { return entries_; }
    price_source source() const { return source_; }
    price_format format() const { return format_; }
    const std::string& path() const { return path_; }
    // The newest as_of of any entry ("" when there is none).
    const std::string& newest_as_of() const { return newest_as_of_; }

private:
    price_source source_;
    price_format format_;
    std::string path_;
    std::vector<price_entry> entries_;
    std::unordered_map<std::string, std::size_t> by_name_;
    std::string newest_as_of_;
};

// What reading a price file gave: a table, or every problem found (each naming the file and
// the entry), never both.
struct price_load_result {
    std::shared_ptr<const price_table> table;
    std::vector<std::string> errors;
};

// Price files are read whole: past this size a file is refused.
inline constexpr std::size_t max_price_file_bytes = 32u << 20;
// Nesting deeper than this in a LiteLLM file is refused before it is parsed.
inline constexpr std::size_t max_price_file_depth = 64;

// Parses a price file's text. Text whose first non-blank character is '{' is LiteLLM's JSON;
// anything else is Michi's YAML format. `name` names the file in errors; `litellm_as_of` is the
// date given to LiteLLM entries (that format has none). Never throws.
price_load_result parse_price_file(std::string_view text, const std::string& name,
                                   price_source source, const std::string& litellm_as_of);
// Michi's YAML format: a top-level `models:` map of entries.
price_load_result parse_michi_prices(std::string_view text, const std::string& name,
                                     price_source source);
// LiteLLM's model_prices_and_context_window.json as it is: entries that are not chat,
// responses or embedding models, or that carry no token prices, are skipped.
price_load_result parse_litellm_prices(std::string_view text, const std::string& name,
                                       price_source source, const std::string& as_of);
// Reads and parses the file at path (bounded in size); a LiteLLM file's entries are dated by
// the file's modification time. Never throws.
price_load_result load_price_file(const std::string& path);

// The table shipped with the gateway (config/prices.yaml as embedded), parsed once. A shipped
// table that does not parse is reported by shipped_price_errors() and is empty.
const price_table& shipped_price_table();
const std::vector<std::string>& shipped_price_errors();
// The embedded text of config/prices.yaml.
std::string_view shipped_prices_text();

// The LiteLLM provider name of a provider type ("" for echo).
std::string_view litellm_provider_name(provider_type t);

// Warnings for `--check`, none of them fatal: configured models and route targets that can be
// served with no price, and prices in use whose as_of is more than stale_after_days before
// today.
inline constexpr int stale_after_days = 180;
std::vector<std::string> price_warnings(const config& cfg, std::chrono::sys_days today);

} // namespace michi::config
