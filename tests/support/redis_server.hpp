#pragma once
// A real redis-server of the test's own, on a free port of 127.0.0.1, with nothing saved to
// disk; killed when the object goes.

#include "support/daemon_process.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace michi::test {

class redis_server {
public:
    // extra: more redis-server options ("--requirepass", "pw"). Throws when it cannot start.
    explicit redis_server(std::vector<std::string> extra = {});

    std::uint16_t port() const { return port_; }
    // "redis://127.0.0.1:PORT"
    std::string url() const;
    // Kills the server (as a crash would); start() brings a new, empty one up on the same port.
    void kill();
    void start();

private:
    bool try_start();

    std::vector<std::string> extra_;
    std::uint16_t port_ = 0;
    std::unique_ptr<daemon_process> proc_;
};

} // namespace michi::test
