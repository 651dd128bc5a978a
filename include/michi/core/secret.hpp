#pragma once
// A secret value (provider API key, admin key) that never prints itself, and the
// digest helpers used to keep client secrets only as SHA-256.

#include <ostream>
#include <string>
#include <string_view>

namespace michi {

// Holds a secret; formatting it yields "[redacted]" so it cannot leak into logs.
class secret {
public:
    secret() = default;
    explicit secret(std::string value) : value_(std::move(value)) {}
    const std::string& reveal() const noexcept { return value_; }
    bool empty() const noexcept { return value_.empty(); }
    friend std::ostream& operator<<(std::ostream& os, const secret&) { return os << "[redacted]"; }

private:
    std::string value_;
};

// Lower-case hex SHA-256 of the input.
std::string sha256_hex(std::string_view data);
// Raw 32-byte SHA-256 of the input.
std::string sha256_raw(std::string_view data);
// The same into `out`, replacing what it held (its storage is reused).
void sha256_raw(std::string_view data, std::string& out);
// Constant-time equality (length leaks, content does not).
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;
// `n` characters of base62 from the OS CSPRNG.
std::string random_base62(std::size_t n);
// Lower-case hex of bytes (a digest).
std::string raw_to_hex(std::string_view raw);
// Bytes of a hex string (even length, hex digits only: check first).
std::string hex_to_raw(std::string_view hex);
// True when s is exactly 64 hex digits.
bool is_sha256_hex(std::string_view s) noexcept;

} // namespace michi
