#pragma once
// Real Redis servers of the test's own, on free ports of 127.0.0.1, with nothing kept once they
// go: a plain or TLS server, a primary with a replica watched by a Sentinel, and a three-node
// Redis Cluster. Each is killed (and its files removed) when the object goes, also when the test
// fails.

#include "support/daemon_process.hpp"
#include "support/fake_upstream.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace michi::test {

// A directory of the test's own, removed with everything in it when the object goes.
struct scratch_dir {
    std::string path;
    scratch_dir();
    ~scratch_dir();
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;
};

class redis_server {
public:
    // extra: more redis-server options ("--requirepass", "pw"); tls: a server that speaks TLS
    // only, with that certificate and key (clients not asked for certificates of their own).
    // Throws when it cannot start.
    explicit redis_server(std::vector<std::string> extra = {},
                          std::optional<tls_files> tls = std::nullopt);

    std::uint16_t port() const { return port_; }
    // "redis://127.0.0.1:PORT", or "rediss://localhost:PORT" for a TLS server (its
    // certificate names localhost).
    std::string url() const;
    // Kills the server (as a crash would); start() brings a new, empty one up on the same port.
    void kill();
    void start();
    // Runs one command on the server (through redis-cli); its output.
    std::string cli(const std::vector<std::string>& args) const;

private:
    bool try_start();

    std::vector<std::string> extra_;
    bool tls_ = false;
    tls_files tls_files_;
    std::uint16_t port_ = 0;
    std::unique_ptr<daemon_process> proc_;
};

// A primary, one replica of it, and one Sentinel watching them under the name "ledger" (it
// calls a primary down after 300 ms without an answer, and fails over on its own vote).
class redis_sentinel_set {
public:
    redis_sentinel_set();
    // "redis+sentinel://127.0.0.1:SENTINEL/ledger"
    std::string url() const;
    redis_server& primary() { return *primary_; }
    // Kills the primary and waits (bounded) until the Sentinel has promoted the replica.
    // False when it did not within the time.
    bool kill_primary_and_fail_over();

private:
    scratch_dir dir_;
    std::unique_ptr<redis_server> primary_;
    std::unique_ptr<redis_server> replica_;
    std::uint16_t sentinel_port_ = 0;
    std::unique_ptr<daemon_process> sentinel_;
};

// Three Redis Cluster nodes, each serving a third of the slots (no replicas), started, joined
// and waited for until the cluster says it is ok.
class redis_cluster {
public:
    redis_cluster();
    // "redis+cluster://127.0.0.1:P1,127.0.0.1:P2" (two seeds: the third is found through them)
    std::string url() const;
    std::vector<std::uint16_t> ports() const;
    // Node i (0-2); node i serves the i-th third of the slots until a test moves some.
    redis_server& node(std::size_t i) { return *nodes_.at(i); }

private:
    std::vector<std::unique_ptr<scratch_dir>> dirs_;
    std::vector<std::unique_ptr<redis_server>> nodes_;
};

} // namespace michi::test
