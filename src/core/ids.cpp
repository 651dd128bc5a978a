#include "michi/core/ids.hpp"

#include <array>
#include <random>

namespace michi {

void new_request_id(std::string& out) {
    // Not a secret: a per-thread PRNG seeded from the OS is enough and far cheaper. The
    // 28 characters are written into a buffer on the stack, then copied once.
    static constexpr char alphabet[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::array<char, 28> id{'r', 'e', 'q', '_'};
    char* p = id.data() + 4;
    for (int i = 0; i < 4; ++i) {
        std::uint64_t r = rng();
        for (int j = 0; j < 6; ++j) {
            *p++ = alphabet[r % 62];
            r /= 62;
        }
    }
    out.assign(id.data(), id.size());
}

std::string new_request_id() {
    std::string id;
    new_request_id(id);
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
