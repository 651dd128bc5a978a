#include "michi/auth/key_memo.hpp"

#include <openssl/crypto.h>

namespace michi::auth {

bool key_memo::holds(std::string_view secret, std::uint64_t keys_id,
                     std::uint64_t admin_generation) const noexcept {
    return (key_ != nullptr || admin_ != nullptr) && keys_id == keys_id_ &&
           admin_generation == admin_generation_ && secret.size() == secret_.size() &&
           CRYPTO_memcmp(secret.data(), secret_.data(), secret.size()) == 0;
}

void key_memo::keep(std::string_view secret, std::uint64_t keys_id, std::uint64_t admin_generation,
                    const config::key_config* key, const store::admin_key* admin) {
    forget(); // (the old secret is wiped before its storage can be given back)
    secret_.assign(secret.data(), secret.size());
    keys_id_ = keys_id;
    admin_generation_ = admin_generation;
    key_ = key;
    admin_ = admin;
}

void key_memo::forget() noexcept {
    if (!secret_.empty()) {
        OPENSSL_cleanse(secret_.data(), secret_.size());
        secret_.clear();
    }
    key_ = nullptr;
    admin_ = nullptr;
}

} // namespace michi::auth
