#pragma once
// One connection's memo of the last key it authenticated: the secret it presented and the key
// that secret named, so that a keep-alive connection presenting the same secret again is not
// hashed again. It holds only while neither key set has changed since (the config snapshot's
// key store and the admin keys' snapshot), so that a revocation or a reload counts from the
// next request on. The secret is compared in constant time and wiped when replaced and when
// the connection ends; it is never logged.

#include "michi/config/config.hpp"
#include "michi/store/key_registry.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace michi::auth {

class key_memo {
public:
    key_memo() = default;
    key_memo(const key_memo&) = delete;
    key_memo& operator=(const key_memo&) = delete;
    ~key_memo() { forget(); }

    // Whether `secret` is the one kept, under the same key sets (constant time in the
    // secret's bytes; its length is not hidden).
    bool holds(std::string_view secret, std::uint64_t keys_id,
               std::uint64_t admin_generation) const noexcept;
    // Keeps `secret` as naming a config key (admin == nullptr) or an admin key.
    void keep(std::string_view secret, std::uint64_t keys_id, std::uint64_t admin_generation,
              const config::key_config* key, const store::admin_key* admin);
    // Wipes the secret kept; the memo then holds nothing.
    void forget() noexcept;

    // The key kept: a config key (admin() null), or an admin key.
    const config::key_config* key() const noexcept { return key_; }
    const store::admin_key* admin() const noexcept { return admin_; }

private:
    std::string secret_;
    std::uint64_t keys_id_ = 0;
    std::uint64_t admin_generation_ = 0;
    const config::key_config* key_ = nullptr;
    const store::admin_key* admin_ = nullptr;
};

} // namespace michi::auth
