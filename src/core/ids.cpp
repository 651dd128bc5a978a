#include "michi/core/ids.hpp"

#include <array>
#include <random>

namespace michi {

std::string new_request_id() {
    // Not a secret: a per-thread PRNG seeded from the OS is enough and far cheaper.
    static constexpr char alphabet[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::string id = "req_";
    id.reserve(28);
    for (int i = 0; i < 4; ++i) {
        std::uint64_t r = rng();
        for (int j = 0; j < 6; ++j) {
            id.push_back(alphabet[r % 62]);
            r /= 62;
        }
    }
    return id;
}

bool is_sane_request_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > 128) {
        return false;
    }
    for (char c : id) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

} // namespace michi
