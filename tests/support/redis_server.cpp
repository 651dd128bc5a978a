#include "support/redis_server.hpp"

#include "support/gateway_harness.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
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

std::string cli_bin() {
    const std::string server = MICHI_REDIS_SERVER_BIN;
    return server.substr(0, server.rfind('/') + 1) + "redis-cli";
}

} // namespace

scratch_dir::scratch_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "michi-redis-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
        throw std::runtime_error("cannot make a temporary directory");
    }
    path = tmpl;
}

scratch_dir::~scratch_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
}

redis_server::redis_server(std::vector<std::string> extra, std::optional<tls_files> tls)
    : extra_(std::move(extra)), tls_(tls.has_value()), tls_files_(tls.value_or(tls_files{})) {
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
    return tls_ ? "rediss://localhost:" + std::to_string(port_)
                : "redis://127.0.0.1:" + std::to_string(port_);
}

void redis_server::kill() { proc_.reset(); }

void redis_server::start() {
    if (!try_start()) {
        throw std::runtime_error("redis-server did not start again: " + proc_->output());
    }
}

bool redis_server::try_start() {
    std::vector<std::string> args{"--bind",           "127.0.0.1", "--save",    "",
                                  "--appendonly",     "no",        "--logfile", "",
                                  "--protected-mode", "no"};
    if (tls_) {
        args.insert(args.end(),
                    {"--port", "0", "--tls-port", std::to_string(port_), "--tls-cert-file",
                     tls_files_.cert_file, "--tls-key-file", tls_files_.key_file,
                     "--tls-ca-cert-file", tls_files_.ca_file, "--tls-auth-clients", "no"});
    } else {
        args.insert(args.end(), {"--port", std::to_string(port_)});
    }
    args.insert(args.end(), extra_.begin(), extra_.end());
    proc_.reset();
    proc_ = std::make_unique<daemon_process>(MICHI_REDIS_SERVER_BIN, args);
    return proc_->wait_for_line("Ready to accept connections");
}

std::string redis_server::cli(const std::vector<std::string>& args) const {
    std::vector<std::string> all{"-h", "127.0.0.1", "-p", std::to_string(port_)};
    all.insert(all.end(), args.begin(), args.end());
    daemon_process p(cli_bin(), all);
    p.wait_exit(std::chrono::seconds(10));
    return p.output();
}

redis_sentinel_set::redis_sentinel_set() {
    primary_ = std::make_unique<redis_server>();
    replica_ = std::make_unique<redis_server>(
        std::vector<std::string>{"--replicaof", "127.0.0.1", std::to_string(primary_->port())});
    // The replica has its copy before the Sentinel looks (it then lists it at once).
    if (!eventually([&] {
            return replica_->cli({"INFO", "replication"}).find("master_link_status:up") !=
                   std::string::npos;
        })) {
        throw std::runtime_error("the replica never synchronised with the primary");
    }
    for (int attempt = 0; attempt < 5; ++attempt) {
        sentinel_port_ = free_port();
        const std::string conf = dir_.path + "/sentinel-" + std::to_string(attempt) + ".conf";
        std::ofstream(conf) << "port " << sentinel_port_ << "\nbind 127.0.0.1\n"
                            << "protected-mode no\ndir " << dir_.path << "\n"
                            << "sentinel monitor ledger 127.0.0.1 " << primary_->port() << " 1\n"
                            << "sentinel down-after-milliseconds ledger 300\n"
                            << "sentinel failover-timeout ledger 5000\n";
        sentinel_ = std::make_unique<daemon_process>(MICHI_REDIS_SERVER_BIN,
                                                     std::vector<std::string>{conf, "--sentinel"});
        if (sentinel_->wait_for_line("+slave slave")) {
            return;
        }
    }
    throw std::runtime_error("redis-sentinel did not start: " + sentinel_->output());
}

std::string redis_sentinel_set::url() const {
    return "redis+sentinel://127.0.0.1:" + std::to_string(sentinel_port_) + "/ledger";
}

bool redis_sentinel_set::kill_primary_and_fail_over() {
    primary_->kill();
    return sentinel_->wait_for_line("+switch-master", std::chrono::seconds(20));
}

redis_cluster::redis_cluster() {
    for (int i = 0; i < 3; ++i) {
        dirs_.push_back(std::make_unique<scratch_dir>());
        nodes_.push_back(std::make_unique<redis_server>(std::vector<std::string>{
            "--cluster-enabled", "yes", "--cluster-config-file", dirs_.back()->path + "/nodes.conf",
            "--cluster-node-timeout", "5000", "--dir", dirs_.back()->path}));
    }
    // A third of the slots each, then every node meets the first.
    const int per = 16384 / 3;
    for (int i = 0; i < 3; ++i) {
        const int from = i * per;
        const int to = i == 2 ? 16383 : (i + 1) * per - 1;
        const auto out =
            nodes_[i]->cli({"CLUSTER", "ADDSLOTSRANGE", std::to_string(from), std::to_string(to)});
        if (out.find("OK") == std::string::npos) {
            throw std::runtime_error("CLUSTER ADDSLOTSRANGE: " + out);
        }
        if (i > 0) {
            nodes_[i]->cli({"CLUSTER", "MEET", "127.0.0.1", std::to_string(nodes_[0]->port())});
        }
    }
    const bool ok = eventually(
        [&] {
            for (const auto& n : nodes_) {
                const auto info = n->cli({"CLUSTER", "INFO"});
                if (info.find("cluster_state:ok") == std::string::npos ||
                    info.find("cluster_known_nodes:3") == std::string::npos) {
                    return false;
                }
            }
            return true;
        },
        std::chrono::seconds(20));
    if (!ok) {
        throw std::runtime_error("the cluster never came up: " +
                                 nodes_[0]->cli({"CLUSTER", "INFO"}));
    }
}

std::string redis_cluster::url() const {
    return "redis+cluster://127.0.0.1:" + std::to_string(nodes_[0]->port()) +
           ",127.0.0.1:" + std::to_string(nodes_[1]->port());
}

std::vector<std::uint16_t> redis_cluster::ports() const {
    std::vector<std::uint16_t> out;
    for (const auto& n : nodes_) {
        out.push_back(n->port());
    }
    return out;
}

} // namespace michi::test
