#include "michi/routing/pricing.hpp"

#include "michi/core/json_scan.hpp"

namespace michi::pipeline {

bool is_priced(const config::model_config& m) noexcept {
    return m.input_per_mtok.has_value() && m.output_per_mtok.has_value();
}

double cost_usd(const config::model_config& m, std::uint64_t in, std::uint64_t out) noexcept {
    return (static_cast<double>(in) * m.input_per_mtok.value_or(0) +
            static_cast<double>(out) * m.output_per_mtok.value_or(0)) /
           1e6;
}

std::uint64_t expected_output_tokens(const nlohmann::json& body) noexcept {
    for (const char* field : {"max_completion_tokens", "max_tokens"}) {
        const auto it = body.find(field);
        if (it != body.end() && it->is_number_unsigned()) {
            return it->get<std::uint64_t>();
        }
    }
    return default_output_estimate;
}

std::size_t delta_content_chars(std::string_view data) noexcept {
    constexpr std::string_view key = "\"content\":\"";
    std::size_t chars = 0;
    std::size_t pos = 0;
    while ((pos = json_scan::find_text(data, key, pos)) != std::string_view::npos) {
        pos += key.size();
        while (pos < data.size() && data[pos] != '"') {
            if (data[pos] == '\\') {
                ++pos; // an escape counts as one character
            }
            // Count UTF-8 lead bytes only, so a multi-byte character counts once.
            if (pos < data.size() && (static_cast<unsigned char>(data[pos]) & 0xC0) != 0x80) {
                ++chars;
            }
            ++pos;
        }
    }
    return chars;
}

} // namespace michi::pipeline
