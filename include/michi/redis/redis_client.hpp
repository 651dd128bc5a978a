#pragma once
// The gateway's way to its Redis, on one event loop: a plain server, TLS, the primary that
// Sentinels name (found again after a failover), or every node of a Redis Cluster (commands
// routed by their key's slot, MOVED and ASK followed). Connections are redis_connections,
// pipelined, one per server; nothing here blocks, and every call ends within its timeout (a
// Sentinel or cluster-map question first adds at most one timeout per server asked).
//
// One implementation for the workers (each its own client on its own loop) and for the key
// sync thread (a client on an io_context of its own: redis_blocking_client).

#include "michi/core/net.hpp"
#include "michi/redis/redis_connection.hpp"
#include "michi/redis/redis_protocol.hpp"
#include "michi/redis/redis_url.hpp"

#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace michi::redis {

class redis_client {
public:
    redis_client(executor ex, redis_url url, std::chrono::milliseconds timeout);
    ~redis_client();
    redis_client(const redis_client&) = delete;
    redis_client& operator=(const redis_client&) = delete;

    // One command: its reply (an error reply is a reply, but for the redirections followed
    // here), or an error code when there is none (last_error() says why). A command whose
    // connection failed after it was sent is not sent again: it may have run.
    awaitable<std::tuple<error_code, redis_value>> call(redis_command cmd);
    awaitable<std::tuple<error_code, redis_value>> call(const std::vector<std::string>& args) {
        return call(redis_command(args));
    }

    const std::string& last_error() const { return last_error_; }
    const redis_url& url() const { return url_; }

private:
    struct topology;
    awaitable<redis_connection*> route(int slot);
    awaitable<void> find_primary();
    awaitable<void> load_slots();
    redis_connection& node(const redis_endpoint& at);
    void lost(redis_connection& conn);
    bool follow(const redis_value& v, int slot, redis_connection*& target, bool& asking);

    executor ex_;
    redis_url url_;
    std::chrono::milliseconds timeout_;
    std::unique_ptr<ssl::context> tls_;
    std::string setup_error_; // the TLS context could not be made: every call fails with it
    redis_hello hello_;       // for the data connections
    std::unique_ptr<redis_connection> primary_; // single and sentinel
    std::unique_ptr<topology> topo_;            // sentinel and cluster
    std::string last_error_;
};

} // namespace michi::redis
