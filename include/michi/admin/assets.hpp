#pragma once
// The dashboard's static files, embedded in the binary at build time (web/dashboard/).

#include <string_view>

namespace michi::admin {

struct asset {
    std::string_view name; // path under /dashboard/, e.g. "app.js"
    std::string_view content_type;
    std::string_view data;
};

// The asset for a name, or nullptr.
const asset* find_asset(std::string_view name);

} // namespace michi::admin
