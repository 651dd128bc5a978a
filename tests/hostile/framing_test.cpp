// HTTP/1.1 framing held to RFC 9112 section 6 on both sides: a request whose body length is
// ambiguous or malformed gets a 400 and the connection is closed, so no part of it is ever
// read as another request; an upstream answer framed ambiguously fails the attempt and its
// connection is never pooled, so no part of it is ever read as another answer.

#include "hostile/hostile_support.hpp"
#include "support/fake_upstream.hpp"
#include "support/gateway_harness.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace michi::test {
namespace {

const std::string chat_body =
    R"({"model":"fake/gpt-test","messages":[{"role":"user","content":"smuggled"}]})";

// The head of a chat request with the test key, without its framing fields and blank line.
std::string chat_head(const std::string& version = "HTTP/1.1") {
    return "POST /v1/chat/completions " + version + "\r\nHost: gw\r\nAuthorization: Bearer " +
           std::string(test_secret) + "\r\nContent-Type: application/json\r\n";
}

TEST(FramingTest, AmbiguousOrMalformedRequestFramingIs400AndClose) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    // A whole second request, which a reader that got the framing wrong would serve.
    const std::string inner = raw_post("/v1/chat/completions", chat_body);
    struct attempt {
        const char* what;
        std::string bytes;
    };
    const std::vector<attempt> attempts = {
        {"Transfer-Encoding: gzip, no length",
         chat_head() + "Transfer-Encoding: gzip\r\n\r\n" + inner},
        {"chunked not the last coding",
         chat_head() + "Transfer-Encoding: chunked, identity\r\n\r\n" + inner},
        {"gzip then chunked in two fields",
         chat_head() + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
             inner},
        {"Transfer-Encoding then Content-Length",
         chat_head() + "Transfer-Encoding: gzip\r\nContent-Length: " +
             std::to_string(inner.size()) + "\r\n\r\n" + inner},
        {"Content-Length then Transfer-Encoding",
         chat_head() + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + inner},
        {"conflicting Content-Lengths",
         chat_head() + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}" + inner},
        {"a Content-Length that is not a number",
         chat_head() + "Content-Length: +2\r\n\r\n{}" + inner},
        {"chunked in HTTP/1.0", chat_head("HTTP/1.0") +
                                    "Connection: keep-alive\r\n"
                                    "Transfer-Encoding: chunked\r\n\r\n"
                                    "2\r\n{}\r\n0\r\n\r\n" +
                                    inner},
        {"a chunk size that is not hex",
         chat_head() + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n" + inner},
        {"a chunk size beyond 64 bits",
         chat_head() + "Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffff0\r\n{}\r\n0\r\n\r\n" +
             inner},
        {"a chunk without its CRLF",
         chat_head() + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n" + inner},
    };
    for (const auto& a : attempts) {
        const auto answer = raw_exchange(gw.port(), a.bytes);
        EXPECT_TRUE(answer.bytes.starts_with("HTTP/1.1 400 ")) << a.what << ":\n" << answer.bytes;
        EXPECT_EQ(status_lines(answer.bytes), 1u) << a.what << ":\n" << answer.bytes;
        EXPECT_NE(answer.bytes.find("\r\nConnection: close\r\n"), std::string::npos)
            << a.what << ":\n"
            << answer.bytes;
        EXPECT_NE(answer.bytes.find("\"invalid_request_error\""), std::string::npos) << a.what;
        EXPECT_TRUE(answer.closed) << a.what;
    }
    // None of the requests behind reached the upstream.
    EXPECT_EQ(up.request_count(), 0u);
    // A well-framed chunked request still works. (It asks for the close: a client that
    // half-closes before its answer is taken for gone, as a proxy does.)
    const std::string ok_body = chat_body;
    char size_line[32];
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", ok_body.size());
    const auto ok = raw_exchange(gw.port(), chat_head() +
                                                "Connection: close\r\n"
                                                "Transfer-Encoding: chunked\r\n\r\n" +
                                                size_line + ok_body + "\r\n0\r\n\r\n");
    EXPECT_TRUE(ok.bytes.starts_with("HTTP/1.1 200 ")) << ok.bytes;
    EXPECT_EQ(up.request_count(), 1u);
}

// A chunk extension or trailer section is bounded like a head: a long one is refused with 400
// and the connection closed, before it can grow the connection's buffer without end; short
// ones are ignored as RFC 9112 lets a server do.
TEST(FramingTest, LongChunkExtensionsAndTrailersAre400AndClose) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    char size_line[32];
    std::snprintf(size_line, sizeof size_line, "%zx", chat_body.size());
    const std::string chunked = chat_head() + "Transfer-Encoding: chunked\r\n\r\n";
    const std::string long_text(100 * 1024, 'x');
    struct attempt {
        const char* what;
        std::string bytes;
    };
    const std::vector<attempt> attempts = {
        {"a 100 KB chunk extension",
         chunked + size_line + ";name=" + long_text + "\r\n" + chat_body + "\r\n0\r\n\r\n"},
        {"a 100 KB extension on the last chunk",
         chunked + size_line + "\r\n" + chat_body + "\r\n0;name=" + long_text + "\r\n\r\n"},
        {"100 KB of trailer fields", chunked + size_line + "\r\n" + chat_body +
                                         "\r\n0\r\nX-Trailer: " + long_text + "\r\n\r\n"},
        {"a chunk line that never ends", chunked + size_line + ";name=" + long_text + long_text},
    };
    for (const auto& a : attempts) {
        const auto answer = raw_exchange(gw.port(), a.bytes);
        EXPECT_TRUE(answer.bytes.starts_with("HTTP/1.1 400 ")) << a.what << ":\n" << answer.bytes;
        EXPECT_EQ(status_lines(answer.bytes), 1u) << a.what;
        EXPECT_NE(answer.bytes.find("\r\nConnection: close\r\n"), std::string::npos) << a.what;
        EXPECT_NE(answer.bytes.find("\"invalid_request_error\""), std::string::npos) << a.what;
        EXPECT_TRUE(answer.closed) << a.what;
    }
    EXPECT_EQ(up.request_count(), 0u);
    // Short extensions and trailers are ignored (a trailer is not read as a field).
    const auto ok = raw_exchange(
        gw.port(), chat_head() + "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n" +
                       size_line + ";a=b;c=\"d\"\r\n" + chat_body +
                       "\r\n0;e=f\r\nX-Checksum: 1\r\n\r\n");
    EXPECT_TRUE(ok.bytes.starts_with("HTTP/1.1 200 ")) << ok.bytes;
    EXPECT_EQ(up.request_count(), 1u);
}

// An upstream that answers the first request of each connection with `first` and any later
// one on the same connection with `later`, raw bytes, counting connections and requests
// (requests framed by Content-Length, as the gateway sends them).
class raw_upstream {
public:
    raw_upstream(std::string first, std::string later)
        : first_(std::move(first)), later_(std::move(later)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(fd_, 16) != 0) {
            throw std::runtime_error("raw_upstream: cannot listen");
        }
        socklen_t len = sizeof addr;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    ~raw_upstream() {
        stopping_ = true;
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        acceptor_.join();
        std::lock_guard lock(mu_);
        for (const int c : clients_) {
            ::shutdown(c, SHUT_RDWR);
        }
        for (auto& t : servers_) {
            t.join();
        }
        for (const int c : clients_) {
            ::close(c);
        }
    }

    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::size_t connections() const { return connections_; }
    std::size_t requests() const { return requests_; }

private:
    void accept_loop() {
        while (!stopping_) {
            const int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) {
                return;
            }
            ++connections_;
            std::lock_guard lock(mu_);
            clients_.push_back(c);
            servers_.emplace_back([this, c] { serve(c); });
        }
    }

    void serve(int c) {
        std::string in;
        std::size_t served = 0;
        char buf[8192];
        for (;;) {
            const auto head_end = in.find("\r\n\r\n");
            if (head_end != std::string::npos) {
                std::size_t length = 0;
                std::string head = in.substr(0, head_end);
                for (auto& ch : head) {
                    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                }
                if (const auto at = head.find("content-length:"); at != std::string::npos) {
                    length = std::stoul(head.substr(at + 15));
                }
                if (in.size() >= head_end + 4 + length) {
                    in.erase(0, head_end + 4 + length);
                    ++requests_;
                    const std::string& answer = served++ == 0 ? first_ : later_;
                    ::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
                    continue;
                }
            }
            const auto n = ::recv(c, buf, sizeof buf, 0);
            if (n <= 0) {
                return;
            }
            in.append(buf, static_cast<std::size_t>(n));
        }
    }

    std::string first_;
    std::string later_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::atomic<std::size_t> connections_{0};
    std::atomic<std::size_t> requests_{0};
    std::thread acceptor_;
    std::mutex mu_;
    std::vector<int> clients_;
    std::vector<std::thread> servers_;
};

TEST(FramingTest, AnUpstreamAnswerFramedAmbiguouslyIsNeverPooledNorReadAsTheNextAnswer) {
    const std::string first = R"({"id":"a","object":"chat.completion","choices":[]})";
    const std::string smuggled = R"({"id":"SMUGGLED","object":"chat.completion","choices":[]})";
    // Content-Length covers a short body; Transfer-Encoding says the body runs to the close,
    // so what the upstream sends next on that connection is still part of this answer. A
    // reader that takes the length pools the connection, and the next request reads the rest
    // as its own answer.
    const std::string ambiguous =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip\r\n"
        "Content-Length: " +
        std::to_string(first.size()) + "\r\n\r\n" + first;
    const std::string rest = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "Content-Length: " +
                             std::to_string(smuggled.size()) + "\r\n\r\n" + smuggled;
    raw_upstream up(ambiguous, rest);
    gateway_harness gw(basic_config(up.base_url()));
    const std::string body =
        R"({"model":"fake/gpt-test","messages":[{"role":"user","content":"hi"}]})";
    const auto one = gw.chat(body);
    const auto two = gw.chat(body);
    EXPECT_EQ(one.status, 502u) << one.body;
    EXPECT_EQ(two.status, 502u) << two.body;
    EXPECT_EQ(two.body.find("SMUGGLED"), std::string::npos) << two.body;
    // Each request went on a connection of its own: the first was not pooled.
    EXPECT_EQ(up.requests(), 2u);
    EXPECT_EQ(up.connections(), 2u);
}

} // namespace
} // namespace michi::test
