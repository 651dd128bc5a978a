#include "support/redis_server.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace michi::test {
namespace {

// A port the kernel just handed out (and took back): free unless someone takes it meanwhile,
// in which case redis-server says so and another is tried.
std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        if (fd >= 0) {
            ::close(fd);
        }
        throw std::runtime_error("no free port");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

} // namespace

redis_server::redis_server(std::vector<std::string> extra) : extra_(std::move(extra)) {
    if (::access(MICHI_REDIS_SERVER_BIN, X_OK) != 0) {
        throw std::runtime_error("redis-server not found (" + std::string(MICHI_REDIS_SERVER_BIN) +
                                 "): run scripts/install-deps.sh --test");
    }
    for (int attempt = 0; attempt < 5; ++attempt) {
        port_ = free_port();
        if (try_start()) {
            return;
        }
    }
    throw std::runtime_error("redis-server did not start: " + proc_->output());
}

std::string redis_server::url() const {
    return "redis://127.0.0.1:" + std::to_string(port_);
}

void redis_server::kill() {
    proc_.reset();
}

void redis_server::start() {
    if (!try_start()) {
        throw std::runtime_error("redis-server did not start again: " + proc_->output());
    }
}

bool redis_server::try_start() {
    std::vector<std::string> args{"--port",     std::to_string(port_), "--bind", "127.0.0.1",
                                  "--save",     "",                    "--appendonly", "no",
                                  "--logfile",  "",                    "--protected-mode", "no"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    proc_.reset();
    proc_ = std::make_unique<daemon_process>(MICHI_REDIS_SERVER_BIN, args);
    return proc_->wait_for_line("Ready to accept connections");
}

} // namespace michi::test
