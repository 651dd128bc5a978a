#include "michi/core/secret.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cctype>
#include <memory>
#include <stdexcept>

namespace michi {

void sha256_raw(std::string_view data, std::string& out) {
    // One digest context per thread, fetched algorithm and context reused: a fresh
    // EVP_Digest allocates and sets up both on every call, several times the hashing itself.
    static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    struct ctx_free {
        void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
    };
    thread_local const std::unique_ptr<EVP_MD_CTX, ctx_free> ctx(EVP_MD_CTX_new());
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int len = 0;
    if (sha256 == nullptr || !ctx || EVP_DigestInit_ex2(ctx.get(), sha256, nullptr) != 1 ||
        EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
        EVP_DigestFinal_ex(ctx.get(), md.data(), &len) != 1) {
        throw std::runtime_error("sha256 failed");
    }
    out.assign(reinterpret_cast<const char*>(md.data()), len);
}

std::string sha256_raw(std::string_view data) {
    std::string out;
    sha256_raw(data, out);
    return out;
}

std::string raw_to_hex(std::string_view raw) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(raw.size() * 2);
    for (unsigned char c : raw) {
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 0xf]);
    }
    return out;
}

std::string sha256_hex(std::string_view data) { return raw_to_hex(sha256_raw(data)); }

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_base62(std::size_t n) {
    static constexpr char alphabet[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    std::string out;
    out.reserve(n);
    std::array<unsigned char, 64> buf{};
    while (out.size() < n) {
        if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1) {
            throw std::runtime_error("CSPRNG unavailable");
        }
        for (unsigned char c : buf) {
            // Rejection sampling keeps the distribution uniform: 248 = 62 * 4.
            if (c < 248 && out.size() < n) {
                out.push_back(alphabet[c % 62]);
            }
        }
    }
    return out;
}

std::string hex_to_raw(std::string_view hex) {
    auto nibble = [](char c) -> unsigned {
        if (c >= '0' && c <= '9') {
            return static_cast<unsigned>(c - '0');
        }
        if (c >= 'a' && c <= 'f') {
            return static_cast<unsigned>(c - 'a' + 10);
        }
        return static_cast<unsigned>(c - 'A' + 10);
    };
    std::string out(hex.size() / 2, '\0');
    for (std::size_t i = 0; i < out.size(); ++i) {
        out[i] = static_cast<char>((nibble(hex[2 * i]) << 4) | nibble(hex[2 * i + 1]));
    }
    return out;
}

bool is_sha256_hex(std::string_view s) noexcept {
    if (s.size() != 64) {
        return false;
    }
    for (char c : s) {
        if (!std::isxdigit(static_cast<unsigned char>(c))) {
            return false;
        }
    }
    return true;
}

} // namespace michi
