#pragma once
// A Redis client for a thread of its own that may block (the key sync): the workers'
// redis_client, with every connection mode, run on an io_context of its own until the
// commands asked for are answered. Every call ends within the client's timeouts.

#include "michi/redis/redis_client.hpp"

#include <tuple>
#include <vector>

namespace michi::redis {

class redis_blocking_client {
public:
    redis_blocking_client(redis_url url, std::chrono::milliseconds timeout);
    ~redis_blocking_client();

    using result = std::tuple<error_code, redis_value>;
    // Sends the commands at once (pipelined, each to the node of its key) and returns their
    // replies in order, once all are in.
    std::vector<result> run(const std::vector<std::vector<std::string>>& cmds);
    result call(const std::vector<std::string>& cmd) {
        return std::move(run(std::vector<std::vector<std::string>>{cmd}).front());
    }

    const std::string& last_error() const { return client_->last_error(); }
    const redis_url& url() const { return client_->url(); }

private:
    net::io_context ioc_;
    std::unique_ptr<redis_client> client_;
};

} // namespace michi::redis
