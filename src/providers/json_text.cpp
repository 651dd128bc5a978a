// JSON text written straight into a string, without building a value: for the request
// heads and bodies the adapters splice, and the chunks the translators write.

#include "michi/providers/request_head.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace michi::providers {

void append_json_string(std::string& out, std::string_view s) {
    const bool plain = std::all_of(s.begin(), s.end(), [](char ch) {
        return static_cast<unsigned char>(ch) >= 0x20 && ch != '"' && ch != '\\';
    });
    if (!plain) {
        out.append(
            nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        return;
    }
    out.push_back('"');
    out.append(s);
    out.push_back('"');
}

} // namespace michi::providers
