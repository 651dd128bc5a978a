#include "michi/redis/host_lookup.hpp"

#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

namespace michi::redis {

std::vector<tcp::endpoint> system_lookup(const std::string& host, std::uint16_t port,
                                         error_code& ec) {
    // A synchronous lookup on a context of its own: getaddrinfo on this thread.
    net::io_context io;
    tcp::resolver resolver(io);
    const auto service = std::to_string(port);
    auto results = resolver.resolve(tcp::v4(), host, service, ec);
    if (ec) {
        results = resolver.resolve(host, service, ec);
    }
    std::vector<tcp::endpoint> out;
    if (!ec) {
        for (const auto& r : results) {
            out.push_back(r.endpoint());
        }
    }
    return out;
}

// What the lookups' threads share with the owner: whether it is still there to be told.
struct host_lookup::shared {
    explicit shared(executor e) : ex(e) {}
    executor ex;
    std::mutex m;
    bool alive = true;       // (written on the owner's event loop, under m)
    std::size_t running = 0; // (under m)
};

host_lookup::host_lookup(executor ex, blocking_lookup lookup)
    : system_(!lookup), lookup_(lookup ? std::move(lookup) : blocking_lookup(system_lookup)),
      s_(std::make_shared<shared>(ex)) {}

host_lookup::~host_lookup() {
    const std::lock_guard lock(s_->m);
    s_->alive = false;
}

void host_lookup::post(const std::shared_ptr<shared>& s, handler done, error_code ec,
                       std::vector<tcp::endpoint> found) {
    net::post(s->ex, [s, done = std::move(done), ec, found = std::move(found)]() mutable {
        bool alive = false;
        {
            const std::lock_guard lock(s->m);
            alive = s->alive;
        }
        if (alive) {
            done(ec, std::move(found));
        }
    });
}

std::size_t host_lookup::running() const {
    const std::lock_guard lock(s_->m);
    return s_->running;
}

bool host_lookup::start(const std::string& host, std::uint16_t port, handler done) {
    // An address needs no lookup (nor a thread).
    error_code not_ip;
    const auto ip = net::ip::make_address(host, not_ip);
    if (system_ && !not_ip) {
        post(s_, std::move(done), {}, {tcp::endpoint(ip, port)});
        return true;
    }
    {
        const std::lock_guard lock(s_->m);
        if (s_->running >= max_running) {
            return false;
        }
        ++s_->running;
    }
    try {
        std::thread([s = s_, lookup = lookup_, host, port, done = std::move(done)]() mutable {
            error_code ec;
            auto found = lookup(host, port, ec);
            const std::lock_guard lock(s->m);
            --s->running;
            if (!s->alive) {
                return;
            }
            // (Posted while the owner is alive, so while its event loop's context exists: the
            // owner goes before its context does.)
            post(s, std::move(done), ec, std::move(found));
        }).detach();
    } catch (const std::system_error&) {
        const std::lock_guard lock(s_->m);
        --s_->running;
        return false;
    }
    return true;
}

} // namespace michi::redis
