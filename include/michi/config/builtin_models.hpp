#pragma once
// Built-in model table: prices (USD per million tokens) and capabilities of well-known
// models, used when `models:` in the config does not name them.

#include <cstdint>
#include <span>
#include <string_view>

namespace michi::config {

struct builtin_model {
    std::string_view name;     // bare model name clients use after "provider/"
    std::string_view upstream; // name sent upstream
    double input_per_mtok;
    double output_per_mtok;
    std::uint64_t context_window;
    bool supports_tools;
    bool supports_images;
};

// Date the built-in prices were taken from the providers' public price pages.
inline constexpr std::string_view builtin_prices_date = "2025-06-01";

std::span<const builtin_model> builtin_models();
const builtin_model* find_builtin_model(std::string_view name);

} // namespace michi::config
