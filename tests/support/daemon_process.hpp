#pragma once
// Runs the built michi-gateway binary as a child process with its stdout and stderr
// on a pipe, for tests of the command line, signals and logs.

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace michi::test {

class daemon_process {
public:
    // Starts MICHI_GATEWAY_BIN with args; env entries are added to the environment.
    daemon_process(const std::vector<std::string>& args,
                   const std::map<std::string, std::string>& env = {});
    // Starts another program (an absolute path) the same way.
    daemon_process(const std::string& program, const std::vector<std::string>& args,
                   const std::map<std::string, std::string>& env = {});
    ~daemon_process(); // SIGKILLs a child still running

    // Reads output until a line containing needle arrives (true) or timeout / EOF (false).
    bool wait_for_line(const std::string& needle,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20));
    // The port parsed from the "listening on HOST:PORT" line (0 if not seen).
    std::uint16_t wait_listening();
    void signal(int sig);
    // Waits for the exit; returns the exit code, or -1 on timeout, or 128+signal.
    int wait_exit(std::chrono::milliseconds timeout = std::chrono::seconds(20));
    // Everything read so far.
    const std::string& output() const { return output_; }

private:
    bool read_some(std::chrono::milliseconds timeout);
    int pid_ = -1;
    int fd_ = -1;
    std::string output_;
    std::size_t scanned_ = 0;
};

// Runs the binary to completion (bounded) and returns {exit code, output}.
std::pair<int, std::string> run_binary(const std::vector<std::string>& args,
                                       const std::map<std::string, std::string>& env = {});

} // namespace michi::test
