// The TLS upstream path against a fake HTTPS upstream with a CA made at run time: new
// connections handshake each on its own (one held handshake holds back no other request),
// later ones resume the worker's session, and a certificate for another name or from an
// unknown CA is still refused, saying why.

#include "support/fake_upstream.hpp"
#include "support/temp_certs.hpp"
#include "support/gateway_harness.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace michi::test {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;
using namespace std::chrono_literals;

const std::string chat_body =
    R"({"model":"tls/gpt-4o-mini","messages":[{"role":"user","content":"x"}]})";

// The `tls` provider: the fake upstream by `host`, trusting the test CA when `ca_file` is
// given; connections get a minute to open (a held handshake waits).
std::string tls_provider(const fake_upstream& up, const std::string& host,
                         const std::string& ca_file) {
    return "  tls: { type: openai, base_url: \"" + up.base_url(host) + "/v1\", api_key: \"sk-t\"" +
           (ca_file.empty() ? std::string() : ", ca_file: \"" + ca_file + "\"") +
           ", connect_timeout: 60s }\n";
}

// `count` chat requests sent at once, each on a connection of its own, from one thread;
// completed() and ok() count their answers as they come.
class concurrent_clients {
public:
    concurrent_clients(std::uint16_t port, std::size_t count) {
        for (std::size_t i = 0; i < count; ++i) {
            asio::co_spawn(ioc_, one(port), asio::detached);
        }
        thread_ = std::thread([this] { ioc_.run_for(120s); }); // (bounded: a stuck test ends)
    }
    ~concurrent_clients() { join(); }
    void join() {
        if (thread_.joinable()) {
            thread_.join();
        }
    }
    std::size_t completed() const { return completed_; }
    std::size_t ok() const { return ok_; }
    std::vector<std::string> failures() {
        std::lock_guard lock(mutex_);
        return failures_;
    }

private:
    asio::awaitable<void> one(std::uint16_t port) {
        std::string why;
        try {
            tcp::socket socket(co_await asio::this_coro::executor);
            co_await socket.async_connect({asio::ip::make_address("127.0.0.1"), port},
                                          asio::use_awaitable);
            http::request<http::string_body> req{http::verb::post, "/v1/chat/completions", 11};
            req.set(http::field::host, "127.0.0.1");
            req.set(http::field::authorization, std::string("Bearer ") + test_secret);
            req.set(http::field::content_type, "application/json");
            req.body() = chat_body;
            req.prepare_payload();
            co_await http::async_write(socket, req, asio::use_awaitable);
            beast::flat_buffer buffer;
            http::response<http::string_body> res;
            co_await http::async_read(socket, buffer, res, asio::use_awaitable);
            if (res.result_int() == 200) {
                ++ok_;
            } else {
                why = std::to_string(res.result_int()) + " " + res.body();
            }
        } catch (const std::exception& e) {
            why = e.what();
        }
        if (!why.empty()) {
            std::lock_guard lock(mutex_);
            failures_.push_back(why);
        }
        ++completed_;
    }

    asio::io_context ioc_;
    std::thread thread_;
    std::atomic<std::size_t> completed_{0};
    std::atomic<std::size_t> ok_{0};
    std::mutex mutex_;
    std::vector<std::string> failures_;
};

// 200 first requests at once, the pool empty: each opens a connection and handshakes, and
// the first handshake the upstream receives is held until every other request has been
// answered. A request that waited on another's handshake (a handshake blocking the worker,
// or connections opened one at a time) would never be answered while it is held.
TEST(TlsUpstreamTest, ConcurrentFirstRequestsWaitOnNoHandshakeButTheirOwn) {
    const temp_certs certs("localhost");
    fake_upstream up(&certs.files);
    up.hold_handshakes(1);
    gateway_harness gw(basic_config(
        up.base_url(), {.providers = tls_provider(up, "localhost", certs.files.ca_file)}));
    constexpr std::size_t n = 200;
    concurrent_clients clients(gw.port(), n);

    ASSERT_TRUE(up.wait_until([&] { return clients.completed() == n - 1; }, 100s))
        << clients.completed() << " of " << n - 1 << " answered while one handshake was held";
    EXPECT_EQ(clients.ok(), n - 1);
    EXPECT_EQ(up.tls_held(), 1u); // the one left is the held one's
    up.release_handshakes();
    ASSERT_TRUE(up.wait_until([&] { return clients.completed() == n; }, 100s));
    clients.join();
    EXPECT_EQ(clients.ok(), n);
    const auto failures = clients.failures();
    EXPECT_TRUE(failures.empty()) << failures.front();
    EXPECT_EQ(up.request_count(), n);
    // Every connection opened completed its handshake; the held one waited for nothing but
    // its own.
    EXPECT_EQ(up.tls_handshakes(), up.connections_opened());
    EXPECT_LE(up.connections_opened(), n);
}

// Connections opened after the first resume its session: the upstream reports each of
// them as resumed. (Each answer closes its connection, so every request opens one.)
TEST(TlsUpstreamTest, NewConnectionsResumeTheWorkersSession) {
    const temp_certs certs("localhost");
    fake_upstream up(&certs.files);
    up.set_handler([](const recorded_request& req) {
        auto res = default_chat_completion(req);
        res.close_connection = true;
        return res;
    });
    gateway_harness gw(basic_config(
        up.base_url(), {.providers = tls_provider(up, "localhost", certs.files.ca_file)}));
    constexpr std::size_t n = 6;
    for (std::size_t i = 0; i < n; ++i) {
        const auto r = gw.chat(chat_body);
        ASSERT_EQ(r.status, 200u) << r.body;
    }
    EXPECT_EQ(up.connections_opened(), n);
    EXPECT_EQ(up.tls_handshakes(), n);
    EXPECT_EQ(up.tls_resumed(), n - 1); // all but the first
}

// Verification stays on with sessions: a certificate for another name, for another
// address, or from a CA the provider does not trust is refused with a 502 that says why,
// and no request reaches the upstream.
TEST(TlsUpstreamTest, WrongNameOrUnknownCaRefusedSayingWhy) {
    const temp_certs other_name("michi-other.test");
    fake_upstream up(&other_name.files);
    auto message = [](const http_reply& r) {
        const auto body = json::parse(r.body, nullptr, false);
        return body.is_discarded() ? r.body : body["error"]["message"].dump();
    };
    {
        gateway_harness gw(basic_config(
            up.base_url(), {.providers = tls_provider(up, "localhost", other_name.files.ca_file)}));
        for (int i = 0; i < 2; ++i) { // (the second after a refusal, with no session to offer)
            const auto r = gw.chat(chat_body);
            EXPECT_EQ(r.status, 502u);
            EXPECT_NE(message(r).find("certificate verify failed: hostname mismatch"),
                      std::string::npos)
                << message(r);
        }
    }
    {
        gateway_harness gw(basic_config(
            up.base_url(), {.providers = tls_provider(up, "127.0.0.1", other_name.files.ca_file)}));
        const auto r = gw.chat(chat_body);
        EXPECT_EQ(r.status, 502u);
        EXPECT_NE(message(r).find("certificate verify failed: IP address mismatch"),
                  std::string::npos)
            << message(r);
    }
    const temp_certs local("localhost");
    fake_upstream trusted_elsewhere(&local.files);
    {
        gateway_harness gw(
            basic_config(trusted_elsewhere.base_url(),
                         {.providers = tls_provider(trusted_elsewhere, "localhost", "")}));
        const auto r = gw.chat(chat_body);
        EXPECT_EQ(r.status, 502u);
        EXPECT_NE(message(r).find("certificate verify failed: unable to get local issuer"),
                  std::string::npos)
            << message(r);
    }
    EXPECT_EQ(up.request_count(), 0u);
    EXPECT_EQ(up.tls_handshakes(), 0u);
    EXPECT_EQ(trusted_elsewhere.request_count(), 0u);
}

} // namespace
} // namespace michi::test
