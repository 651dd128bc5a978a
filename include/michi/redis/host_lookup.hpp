#pragma once
// The name lookups of one Redis connection, each on a thread of its own, its answer handed to
// the connection's event loop. Asio's resolver runs an event loop's lookups one after another
// on a single thread and cannot cut a running one short, so a lookup that the DNS server never
// answers (a container's name asked while that container restarts: tens of seconds) would hold
// back every later one on that loop, and the connection would stay down long after the server
// came back. Here a later lookup starts at once, beside the one still hanging (at most
// max_running of them at a time).

#include "michi/core/net.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace michi::redis {

// A blocking lookup of host:port (run off the event loop): its addresses, or an error in ec.
using blocking_lookup = std::function<std::vector<tcp::endpoint>(
    const std::string& host, std::uint16_t port, error_code& ec)>;

// The system's lookup (getaddrinfo): IPv4 addresses first, as hiredis does (a name asked for
// both families waits for the AAAA answer too, which a container network's resolver may
// forward to an upstream DNS that never answers); only a name without any IPv4 address is
// asked for again, for every family.
std::vector<tcp::endpoint> system_lookup(const std::string& host, std::uint16_t port,
                                         error_code& ec);

class host_lookup {
public:
    using handler = std::function<void(error_code, std::vector<tcp::endpoint>)>;
    static constexpr std::size_t max_running = 4;

    // lookup: the blocking lookup to run (system_lookup when empty).
    explicit host_lookup(executor ex, blocking_lookup lookup = {});
    // The handlers of lookups still running are never called.
    ~host_lookup();
    host_lookup(const host_lookup&) = delete;
    host_lookup& operator=(const host_lookup&) = delete;

    // Starts looking host:port up; `done` is called on the executor (never inline). False,
    // and nothing started, while max_running lookups are still running or no thread could
    // be made.
    bool start(const std::string& host, std::uint16_t port, handler done);
    // Lookups started and not answered yet.
    std::size_t running() const;

private:
    struct shared;
    // Hands an answer to the owner's event loop; dropped there if the owner went meanwhile.
    static void post(const std::shared_ptr<shared>& s, handler done, error_code ec,
                     std::vector<tcp::endpoint> found);

    bool system_; // the system's lookup (an address is then taken as it is)
    blocking_lookup lookup_;
    std::shared_ptr<shared> s_;
};

} // namespace michi::redis
