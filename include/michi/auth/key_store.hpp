#pragma once
// Looks up client keys by the SHA-256 digest of the presented secret; clear secrets
// are never kept. Built once per config snapshot and read-only afterwards.

#include "michi/config/config.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <unordered_map>

namespace michi::auth {

class key_store {
public:
    // Longer presented secrets are refused without hashing (Michi's keys are far shorter).
    static constexpr std::size_t max_secret_bytes = 512;

    explicit key_store(const config::config& cfg);
    // The key whose digest equals sha256(presented), or nullptr.
    const config::key_config* authenticate(std::string_view presented) const;
    // The key with this raw SHA-256 digest (of a presented secret), or nullptr.
    const config::key_config* find_digest(const std::string& digest) const;
    std::size_t size() const noexcept { return by_digest_.size(); }
    // This store's number, never given to another store built in this process (a key_memo
    // holds only under the store it was made with).
    std::uint64_t id() const noexcept { return id_; }

private:
    std::unordered_map<std::string, const config::key_config*> by_digest_; // raw digest -> key
    std::uint64_t id_;
};

// Shell-style glob with `*` (any run) and `?` (one character).
bool glob_match(std::string_view pattern, std::string_view text) noexcept;
// True when the key may use `model` (a model or route name): no globs means everything.
bool model_allowed(const config::key_config& key, std::string_view model) noexcept;

} // namespace michi::auth
