#include "hostile/hostile_support.hpp"

#include "michi/core/safe_text.hpp"
#include "support/gateway_harness.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace michi::test {

raw_answer raw_exchange(std::uint16_t port, const std::string& bytes, bool half_close,
                        std::chrono::milliseconds limit) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        throw std::runtime_error("socket() failed");
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        throw std::runtime_error("connect() failed: " + std::string(std::strerror(errno)));
    }
    timeval tv{};
    tv.tv_sec = 0;
    tv.tv_usec = 100 * 1000; // reads wake up now and then to check the time limit
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::size_t sent = 0;
    while (sent < bytes.size()) {
        const auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            break; // closed early by the gateway: read what it said
        }
        sent += static_cast<std::size_t>(n);
    }
    if (half_close) {
        ::shutdown(fd, SHUT_WR);
    }
    raw_answer out;
    const auto give_up = std::chrono::steady_clock::now() + limit;
    char buf[16384];
    while (std::chrono::steady_clock::now() < give_up) {
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            out.bytes.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n == 0 || errno == ECONNRESET) {
            out.closed = true;
            break;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            break;
        }
    }
    ::close(fd);
    return out;
}

std::size_t status_lines(const std::string& bytes) {
    std::size_t n = 0;
    for (std::size_t at = bytes.find("HTTP/1.1 "); at != std::string::npos;
         at = bytes.find("HTTP/1.1 ", at + 1)) {
        if (at == 0 || bytes[at - 1] == '\n') {
            ++n;
        }
    }
    return n;
}

std::string raw_post(const std::string& path, const std::string& body,
                     const std::string& extra_headers) {
    return "POST " + path + " HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " +
           std::string(test_secret) + "\r\nContent-Type: application/json\r\n" + extra_headers +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

bool valid_utf8(const std::string& text) {
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t n = safe_text::utf8_sequence(text, i);
        if (n == 0) {
            return false;
        }
        i += n;
    }
    return true;
}

std::string config_dir::write(const std::string& name, const std::string& text) const {
    const auto f = file(name);
    std::ofstream(f, std::ios::binary | std::ios::trunc) << text;
    return f;
}

} // namespace michi::test
