#include "michi/core/ids.hpp"

#include <array>
#include <cstdint>
#include <random>

namespace michi {

namespace {

// A per-thread generator's state (wyrand: an add and one multiply a draw), seeded from the OS
// on first use; never 0 once seeded.
thread_local std::uint64_t rng_state = 0;

std::uint64_t seed() {
    std::random_device os;
    return (std::uint64_t{os()} << 32 | os()) | 1;
}

} // namespace

void new_request_id(std::string& out) {
    // Not a secret: a per-thread PRNG seeded from the OS is enough and far cheaper. Each
    // character takes 32 random bits, scaled to the alphabet by a multiply (no division);
    // the 28 characters are written into a buffer on the stack, then copied once.
    static constexpr char alphabet[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    std::uint64_t s = rng_state;
    if (s == 0) {
        s = seed();
    }
    std::array<char, 28> id{'r', 'e', 'q', '_'};
    char* p = id.data() + 4;
    for (int i = 0; i < 12; ++i) {
        s += 0xa0761d6478bd642fULL;
        const auto m = static_cast<unsigned __int128>(s) * (s ^ 0xe7037ed1a0b428dbULL);
        const auto r = static_cast<std::uint64_t>(m >> 64) ^ static_cast<std::uint64_t>(m);
        *p++ = alphabet[((r & 0xFFFFFFFFULL) * 62) >> 32];
        *p++ = alphabet[((r >> 32) * 62) >> 32];
    }
    rng_state = s;
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
