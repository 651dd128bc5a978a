#include "michi/auth/authenticator.hpp"

#include "michi/core/secret.hpp"

namespace michi::auth {

std::string_view presented_secret(std::string_view authorization, std::string_view x_api_key) {
    if (authorization.size() > 7 &&
        (authorization.substr(0, 7) == "Bearer " || authorization.substr(0, 7) == "bearer ")) {
        return authorization.substr(7);
    }
    return x_api_key;
}

result<void> authenticator::authenticate(std::string_view secret, const key_store& config_keys,
                                         identity& who, std::string& revoked_id, key_memo* memo) {
    if (secret.empty()) {
        return errors::invalid_api_key("Missing API key: send \"Authorization: Bearer <key>\".");
    }
    if (secret.size() > key_store::max_secret_bytes) {
        return errors::invalid_api_key();
    }
    const auto& admin_keys = admin_view_.get(registry_.source());
    const auto admin_generation = admin_view_.generation();
    if (memo != nullptr && memo->holds(secret, config_keys.id(), admin_generation)) {
        // The same secret under the same key sets names the same live key.
        if (const auto* a = memo->admin()) {
            who.admin_key = a->as_key_config();
            who.key = &*who.admin_key;
        } else {
            who.key = memo->key();
        }
        return ok();
    }
    // Once, for both key sets (the digest is not kept past this call).
    sha256_raw(secret, digest_);
    who.key = config_keys.find_digest(digest_);
    const store::admin_key* admin = nullptr;
    if (who.key == nullptr) {
        // Not in the config file: perhaps a key made through the admin API.
        if (const auto* a = admin_keys->find_digest(digest_)) {
            admin = a;
            who.admin_key = a->as_key_config();
            who.key = &*who.admin_key;
        }
    }
    if (who.key == nullptr) {
        return errors::invalid_api_key();
    }
    if (admin_keys->revoked.contains(who.key->id)) {
        revoked_id = who.key->id;
        who.key = nullptr;
        return errors::revoked_api_key();
    }
    if (memo != nullptr) {
        memo->keep(secret, config_keys.id(), admin_generation, admin == nullptr ? who.key : nullptr,
                   admin);
    }
    return ok();
}

} // namespace michi::auth
