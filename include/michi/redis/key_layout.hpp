#pragma once
// Where Michi keeps its state in Redis, in one place for the shared ledger (guard/) and the key
// sync (store/) and the response cache (cache/). Every key's ledger state is one hash tagged with the key's id, so each
// script touches one cluster slot; the shared admin keys are three structures of their own.

#include <string>

namespace michi::redis {

// The hash of one key's ledger state: spend, holds and per-second counts.
inline std::string state_key(const std::string& key_id) { return "michi:{" + key_id + "}"; }
// The field of a key's state hash that marks it revoked (every admission checks it).
inline constexpr const char* revoked_field = "revoked";

// Admin keys shared between replicas: id -> the key as JSON (never a secret).
inline constexpr const char* keys_hash = "michi:keys";
// Every revoked key id.
inline constexpr const char* revoked_set = "michi:revoked";
// Bumped after each change of the two above.
inline constexpr const char* keys_version = "michi:keys:version";

// One answer of the response cache, by the hex digest of its request (expires by itself).
inline std::string cache_key(const std::string& digest_hex) { return "michi:cache:" + digest_hex; }

} // namespace michi::redis
