#pragma once
// Admission's first check, for one worker: the presented secret must name a live key, of the
// config file (the snapshot's key store) or made through the admin API (the key registry).
// Only digests are compared (in constant time); the secret is never kept.

#include "michi/auth/key_memo.hpp"
#include "michi/auth/key_store.hpp"
#include "michi/core/published.hpp"
#include "michi/core/result.hpp"
#include "michi/store/key_registry.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace michi::auth {

// The key a request is made with.
struct identity {
    const config::key_config* key = nullptr;     // points into the snapshot, or at admin_key
    std::optional<config::key_config> admin_key; // a key made through the admin API, copied
};

class authenticator {
public:
    explicit authenticator(store::key_registry& registry) : registry_(registry) {}

    // Another process sharing the key file (or this one) changed the keys since they were
    // last read: refresh() before authenticating, so that a key revoked there is refused
    // here from this request on.
    bool needs_refresh() const noexcept { return registry_.changed_elsewhere(); }
    store::key_registry& registry() noexcept { return registry_; }

    // The key the secret names, into `who` (its key points at who.admin_key for an admin
    // key: keep `who` where it is); 401 when there is none, or it is revoked (`revoked_id`
    // then names it, for the log). With a memo (the connection's), a secret it holds under
    // the same key sets is not hashed again, and a secret that names a live key is kept.
    result<void> authenticate(std::string_view secret, const key_store& config_keys, identity& who,
                              std::string& revoked_id, key_memo* memo = nullptr);

private:
    store::key_registry& registry_;
    std::string digest_; // reused: this worker's digest of the presented secret
    published<store::key_snapshot>::reader admin_view_; // this worker's copy of the admin keys
};

// The presented secret: "Authorization: Bearer X", else "x-api-key: X".
std::string_view presented_secret(std::string_view authorization, std::string_view x_api_key);

} // namespace michi::auth
