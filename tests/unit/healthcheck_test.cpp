// `michi-gateway healthcheck`: the URL it accepts and the answer it gives for each reply.
#include "michi/app/healthcheck.hpp"
#include "michi/core/net.hpp"

#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace michi {
namespace {

using namespace std::chrono_literals;

// A one-connection HTTP server on 127.0.0.1:0 that answers the first request with `reply`
// (or holds the connection without answering when `reply` is empty, until destroyed).
class canned_server {
public:
    explicit canned_server(std::string reply)
        : acceptor_(ctx_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
          reply_(std::move(reply)) {
        thread_ = std::thread([this] { serve(); });
    }
    ~canned_server() {
        release_.set_value();
        // Wakes an accept still waiting (a test that never connected).
        error_code ignored;
        tcp::socket wake(ctx_);
        wake.connect(acceptor_.local_endpoint(), ignored);
        thread_.join();
    }
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    const std::string& request() const { return request_; }

private:
    void serve() {
        error_code ec;
        tcp::socket s(ctx_);
        acceptor_.accept(s, ec);
        if (ec) {
            return;
        }
        char buf[1024];
        while (request_.find("\r\n\r\n") == std::string::npos) {
            const auto n = s.read_some(net::buffer(buf), ec);
            if (ec) {
                return;
            }
            request_.append(buf, n);
        }
        if (reply_.empty()) {
            release_.get_future().wait(); // hold the connection until the test ends
            return;
        }
        net::write(s, net::buffer(reply_), ec);
    }

    net::io_context ctx_;
    tcp::acceptor acceptor_;
    std::string reply_;
    std::string request_;
    std::promise<void> release_;
    std::thread thread_;
};

probe_target local(std::uint16_t port) { return {"127.0.0.1", std::to_string(port), "/healthz"}; }

TEST(Healthcheck, ParsesHttpUrls) {
    std::string why;
    auto t = parse_probe_url("http://127.0.0.1:8080/healthz", why);
    ASSERT_TRUE(t) << why;
    EXPECT_EQ(t->host, "127.0.0.1");
    EXPECT_EQ(t->port, "8080");
    EXPECT_EQ(t->target, "/healthz");
    t = parse_probe_url("http://[::1]:9/readyz?x=1", why);
    ASSERT_TRUE(t) << why;
    EXPECT_EQ(t->host, "::1");
    EXPECT_EQ(t->port, "9");
    EXPECT_EQ(t->target, "/readyz?x=1");
    t = parse_probe_url("http://gateway", why);
    ASSERT_TRUE(t) << why;
    EXPECT_EQ(t->port, "80");
    EXPECT_EQ(t->target, "/");
}

TEST(Healthcheck, RefusesWhatItCannotProbe) {
    std::string why;
    EXPECT_FALSE(parse_probe_url("https://127.0.0.1/healthz", why));
    EXPECT_EQ(why, "only http:// URLs are probed");
    EXPECT_FALSE(parse_probe_url("http://:8080/healthz", why));
    EXPECT_EQ(why, "no host in the URL");
    EXPECT_FALSE(parse_probe_url("http://127.0.0.1:99999/", why));
    EXPECT_EQ(why, "bad port \"99999\"");
    EXPECT_FALSE(parse_probe_url("http://127.0.0.1:/", why));
    EXPECT_FALSE(parse_probe_url("http://[::1/", why));
    EXPECT_EQ(run_healthcheck({"--url", "ftp://x"}), 2);
    EXPECT_EQ(run_healthcheck({"--bogus"}), 2);
}

TEST(Healthcheck, HealthyOn200) {
    canned_server server("HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}");
    std::string what;
    EXPECT_TRUE(probe(local(server.port()), 2000ms, what));
    EXPECT_EQ(what, "200 OK");
    EXPECT_TRUE(server.request().starts_with("GET /healthz HTTP/1.1\r\n")) << server.request();
}

TEST(Healthcheck, UnhealthyOnAnyOtherStatus) {
    canned_server server("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    std::string what;
    EXPECT_FALSE(probe(local(server.port()), 2000ms, what));
    EXPECT_EQ(what, "503 Service Unavailable");
}

TEST(Healthcheck, UnhealthyWhenNothingListens) {
    std::uint16_t port = 0;
    {
        net::io_context ctx;
        tcp::acceptor a(ctx, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
        port = a.local_endpoint().port();
    }
    std::string what;
    EXPECT_FALSE(probe(local(port), 2000ms, what));
    EXPECT_NE(what.find("refused"), std::string::npos) << what;
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/healthz";
    EXPECT_EQ(run_healthcheck({"--url", url}), 1);
}

TEST(Healthcheck, UnhealthyWhenNoAnswerInTime) {
    canned_server server(""); // accepts, reads the request, never answers
    std::string what;
    const auto start = steady_clock::now();
    EXPECT_FALSE(probe(local(server.port()), 300ms, what));
    EXPECT_LT(steady_clock::now() - start, 5s);
    EXPECT_EQ(what, "timed out after 300 ms");
}

TEST(Healthcheck, UnhealthyOnGarbage) {
    canned_server server("SSH-2.0-OpenSSH_9.2\r\n\r\n");
    std::string what;
    EXPECT_FALSE(probe(local(server.port()), 2000ms, what));
}

} // namespace
} // namespace michi
