#pragma once
// Helpers of the hostile-client suite: raw bytes on a socket, with the answer read to the
// connection's end, and a scratch directory per test.

#include "support/temp_dir.hpp"
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

namespace michi::test {

// What came back on a raw connection.
struct raw_answer {
    std::string bytes;   // everything the gateway sent
    bool closed = false; // it closed the connection (end of stream or reset) in time
};

// Connects to 127.0.0.1:port, sends `bytes` (then half-closes when `half_close`), and reads
// until the gateway closes the connection or `limit` passes.
raw_answer raw_exchange(std::uint16_t port, const std::string& bytes, bool half_close = false,
                        std::chrono::milliseconds limit = std::chrono::seconds(10));

// How many HTTP/1.1 responses (status lines at the start of a line) are in bytes.
std::size_t status_lines(const std::string& bytes);

// A raw POST of body to path with the test key, framed by Content-Length.
std::string raw_post(const std::string& path, const std::string& body,
                     const std::string& extra_headers = "");

// Whether text is valid UTF-8.
bool valid_utf8(const std::string& text);

// A directory of its own for the running test, removed at the end, with files written in.
class config_dir : public temp_dir {
public:
    config_dir() : temp_dir("michi-hostile") {}
    // Writes text to a file of the directory; returns its path.
    std::string write(const std::string& name, const std::string& text) const;
};

} // namespace michi::test
