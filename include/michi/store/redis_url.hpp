#pragma once
// store.redis: where the shared ledger's Redis is, parsed from its URL.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace michi::store {

// redis://[[user]:password@]host[:port][/db]
struct redis_url {
    std::string host;
    std::uint16_t port = 6379;
    std::string username;
    std::string password;
    int db = 0;

    // The URL's parts, or nullopt with a message saying what is wrong.
    static std::optional<redis_url> parse(std::string_view url, std::string& error);
    // "host:port" (never the password), for messages and logs.
    std::string where() const;
};

} // namespace michi::store
