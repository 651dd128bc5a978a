#pragma once
// store.redis: where the shared ledger's Redis is and how to reach it, parsed from its URL.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace michi::redis {

// One Redis server (or Sentinel) by address.
struct redis_endpoint {
    std::string host;
    std::uint16_t port = 6379;

    // "host:port" ("[v6]:port"), for messages and logs.
    std::string where() const;
    bool operator==(const redis_endpoint&) const = default;
};

// How the gateway finds the server that takes its writes.
enum class redis_mode {
    single,   // redis:// or rediss://: the one server named
    sentinel, // redis+sentinel://: the primary the Sentinels name, followed through failovers
    cluster,  // redis+cluster://: every node of a Redis Cluster, commands routed by slot
};

//   redis[s]://[[user]:password@]host[:port][/db][?params]
//   redis[s]+sentinel://[[user]:password@]host[:port][,host[:port]...]/primary-name[/db][?params]
//   redis[s]+cluster://[[user]:password@]host[:port][,host[:port]...][?params]
// params (percent-encoded, joined by '&'): ca_file=PATH (PEM trust anchors added to the
// system's, for rediss), sentinel_username=, sentinel_password= (the Sentinels' own AUTH;
// default: none).
struct redis_url {
    redis_mode mode = redis_mode::single;
    bool tls = false;
    std::vector<redis_endpoint> nodes; // the server, the Sentinels or the cluster's seeds
    std::string host;                  // nodes[0]'s
    std::uint16_t port = 6379;         // nodes[0]'s
    std::string username;
    std::string password;
    int db = 0;
    std::string primary_name; // sentinel: the name the Sentinels monitor the primary by
    std::string ca_file;
    std::string sentinel_username;
    std::string sentinel_password;

    // The URL's parts, or nullopt with a message saying what is wrong (never the password).
    static std::optional<redis_url> parse(std::string_view url, std::string& error);
    // Where the ledger is, for messages and logs (never a password): "host:port",
    // "primary \"name\" of the Sentinels at h1:p1,h2:p2", "the cluster at h1:p1,h2:p2".
    std::string where() const;
};

} // namespace michi::redis
