#include "michi/redis/redis_blocking_client.hpp"

namespace michi::redis {

redis_blocking_client::redis_blocking_client(redis_url url, std::chrono::milliseconds timeout)
    : ioc_(1),
      client_(std::make_unique<redis_client>(ioc_.get_executor(), std::move(url), timeout)) {}

redis_blocking_client::~redis_blocking_client() {
    // The client's handlers are dropped with the io_context, never run after it is gone.
    client_.reset();
}

std::vector<redis_blocking_client::result>
redis_blocking_client::run(const std::vector<std::vector<std::string>>& cmds) {
    std::vector<result> out(cmds.size());
    std::size_t left = cmds.size();
    for (std::size_t i = 0; i < cmds.size(); ++i) {
        net::co_spawn(
            ioc_, client_->call(cmds[i]), [&out, &left, i](std::exception_ptr e, result r) {
                out[i] = e ? result{make_error_code(std::errc::io_error), {}} : std::move(r);
                --left;
            });
    }
    // One handler at a time until every command is answered (each ends within the
    // client's timeouts); the connections' reads stay pending for the next run.
    if (ioc_.stopped()) {
        ioc_.restart();
    }
    while (left > 0) {
        ioc_.run_one();
    }
    return out;
}

} // namespace michi::redis
