#include "michi/auth/key_store.hpp"

#include "michi/core/secret.hpp"

#include <atomic>

namespace michi::auth {

namespace {

std::uint64_t next_store_id() {
    static std::atomic<std::uint64_t> n{0};
    return n.fetch_add(1, std::memory_order_relaxed) + 1;
}

} // namespace

key_store::key_store(const config::config& cfg) : id_(next_store_id()) {
    for (const auto& key : cfg.keys) {
        if (is_sha256_hex(key.secret_sha256)) {
            by_digest_.emplace(hex_to_raw(key.secret_sha256), &key);
        }
    }
}

const config::key_config* key_store::authenticate(std::string_view presented) const {
    if (presented.empty() || presented.size() > max_secret_bytes) {
        return nullptr;
    }
    return find_digest(sha256_raw(presented));
}

const config::key_config* key_store::find_digest(const std::string& digest) const {
    const auto it = by_digest_.find(digest);
    // The map lookup hashes a digest the caller cannot steer; the final comparison is
    // constant time all the same.
    if (it == by_digest_.end() || !constant_time_equal(it->first, digest)) {
        return nullptr;
    }
    return it->second;
}

bool glob_match(std::string_view pattern, std::string_view text) noexcept {
    std::size_t p = 0;
    std::size_t t = 0;
    std::size_t star = std::string_view::npos;
    std::size_t mark = 0;
    while (t < text.size()) {
        if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
            ++p;
            ++t;
        } else if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            mark = t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++mark;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') {
        ++p;
    }
    return p == pattern.size();
}

bool model_allowed(const config::key_config& key, std::string_view model) noexcept {
    if (key.models.empty()) {
        return true;
    }
    for (const auto& pattern : key.models) {
        if (glob_match(pattern, model)) {
            return true;
        }
    }
    return false;
}

} // namespace michi::auth
