#include "support/daemon_process.hpp"

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

extern char** environ;

namespace michi::test {

daemon_process::daemon_process(const std::vector<std::string>& args,
                               const std::map<std::string, std::string>& env)
    : daemon_process(MICHI_GATEWAY_BIN, args, env) {}

daemon_process::daemon_process(const std::string& program, const std::vector<std::string>& args,
                               const std::map<std::string, std::string>& env) {
    int fds[2];
    if (::pipe(fds) != 0) {
        throw std::runtime_error("pipe failed");
    }
    std::vector<std::string> argv_s{program};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    std::vector<std::string> env_s;
    for (char** e = environ; *e != nullptr; ++e) {
        env_s.emplace_back(*e);
    }
    for (const auto& [k, v] : env) {
        env_s.push_back(k + "=" + v);
    }
    std::vector<char*> envp;
    for (auto& e : env_s) {
        envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    fd_ = fds[0];
    if (rc != 0) {
        throw std::runtime_error(std::string("posix_spawn failed: ") + std::strerror(rc));
    }
}

daemon_process::~daemon_process() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

bool daemon_process::read_some(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) {
        return false;
    }
    char buf[4096];
    const auto n = ::read(fd_, buf, sizeof buf);
    if (n <= 0) {
        return false;
    }
    output_.append(buf, static_cast<std::size_t>(n));
    return true;
}

bool daemon_process::wait_for_line(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto pos = output_.find(needle, scanned_);
        if (pos != std::string::npos) {
            const auto eol = output_.find('\n', pos);
            scanned_ = eol == std::string::npos ? output_.size() : eol + 1;
            return true;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0 || !read_some(left)) {
            return false;
        }
    }
}

std::uint16_t daemon_process::wait_listening() {
    if (!wait_for_line("listening on ")) {
        return 0;
    }
    // "... listening on 127.0.0.1:PORT (...)"
    const auto start = output_.find("listening on ") + 13;
    const auto addr = output_.substr(start, output_.find(' ', start) - start);
    return static_cast<std::uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1)));
}

void daemon_process::signal(int sig) { ::kill(pid_, sig); }

int daemon_process::wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int status = 0;
        const auto r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            pid_ = -1;
            while (read_some(std::chrono::milliseconds(0))) {}
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        if (std::chrono::steady_clock::now() > deadline) {
            return -1;
        }
        // Drain output while waiting; the read itself is the bounded wait.
        read_some(std::chrono::milliseconds(20));
    }
}

std::pair<int, std::string> run_binary(const std::vector<std::string>& args,
                                       const std::map<std::string, std::string>& env) {
    daemon_process p(args, env);
    const int code = p.wait_exit();
    return {code, p.output()};
}

} // namespace michi::test
