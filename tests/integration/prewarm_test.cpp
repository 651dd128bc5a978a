// A provider's `prewarm`: each worker opens that many connections (TCP and TLS handshake) in
// the background at start and on a reload that adds the provider, and the first requests
// reuse them; with none asked for nothing is opened ahead; a provider that cannot be reached
// holds back neither the start nor other requests.

#include "support/fake_upstream.hpp"
#include "support/temp_certs.hpp"
#include "support/gateway_harness.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <gtest/gtest.h>

#include <string>

namespace michi::test {
namespace {

using namespace std::chrono_literals;

const std::string chat_body =
    R"({"model":"tls/gpt-4o-mini","messages":[{"role":"user","content":"x"}]})";

// A provider `name` at the fake upstream over TLS (trusting the test CA), with `extra` fields.
std::string tls_provider(const std::string& name, const fake_upstream& up, const tls_files& tls,
                         const std::string& extra) {
    return "  " + name + ": { type: openai, base_url: \"" + up.base_url("localhost") +
           "/v1\", api_key: \"sk-t\", ca_file: \"" + tls.ca_file + "\"" + extra + " }\n";
}

using counts = std::pair<std::size_t, std::size_t>; // idle, being opened

// Two workers, each opening two connections at start: the fake upstream sees four
// connections and four handshakes before any request, and the first requests reuse them
// (no connection accepted after them).
TEST(PrewarmTest, ConnectionsOpenedAtStartAndReusedByTheFirstRequests) {
    const temp_certs certs;
    fake_upstream up(&certs.files);
    gateway_harness gw(basic_config(
        up.base_url(), {.server = "  threads: 2\n",
                        .providers = tls_provider("tls", up, certs.files, ", prewarm: 2")}));
    // Asked of each worker after its start's work was posted: four on their way or in the pool.
    const auto now = gw.gw().upstream_connections();
    EXPECT_EQ(now.first + now.second, 4u);
    ASSERT_TRUE(eventually([&] { return gw.gw().upstream_connections() == counts{4, 0}; }));
    // (The upstream counts a handshake once it reads the client's last message, which may come
    // after the gateway is done with it.)
    ASSERT_TRUE(up.wait_until([&] { return up.tls_handshakes() == 4; }));
    EXPECT_EQ(up.connections_opened(), 4u);
    EXPECT_EQ(up.request_count(), 0u);

    for (int i = 0; i < 4; ++i) {
        const auto r = gw.chat(chat_body);
        ASSERT_EQ(r.status, 200u) << r.body;
    }
    EXPECT_EQ(up.request_count(), 4u);
    EXPECT_EQ(up.connections_opened(), 4u); // every request on a prewarmed connection
    EXPECT_EQ(up.tls_handshakes(), 4u);
}

// Without prewarm (the default) nothing is opened ahead: the first request opens the first
// connection.
TEST(PrewarmTest, NoneByDefault) {
    const temp_certs certs;
    fake_upstream up(&certs.files);
    gateway_harness gw(basic_config(
        up.base_url(), {.providers = tls_provider("tls", up, certs.files, ", prewarm: 0")}));
    EXPECT_EQ(gw.gw().upstream_connections(), (counts{0, 0}));
    EXPECT_EQ(up.connections_opened(), 0u);
    ASSERT_EQ(gw.chat(chat_body).status, 200u);
    EXPECT_EQ(up.connections_opened(), 1u);
    EXPECT_EQ(up.tls_handshakes(), 1u);
}

// A reload that adds a provider with prewarm opens its connections; the first request to it
// reuses one.
TEST(PrewarmTest, ReloadAddingAProviderOpensItsConnections) {
    const temp_certs certs;
    fake_upstream up(&certs.files);
    gateway_harness gw(basic_config(up.base_url()));
    EXPECT_EQ(gw.gw().upstream_connections(), (counts{0, 0}));

    auto next = config::load_string(basic_config(
        up.base_url(), {.providers = tls_provider("tls", up, certs.files, ", prewarm: 1")}));
    ASSERT_TRUE(next.cfg) << (next.errors.empty() ? "" : next.errors.front());
    std::string error;
    ASSERT_TRUE(gw.gw().reload(next.cfg, error)) << error;
    ASSERT_TRUE(eventually([&] { return gw.gw().upstream_connections() == counts{1, 0}; }));
    ASSERT_TRUE(up.wait_until([&] { return up.tls_handshakes() == 1; }));
    EXPECT_EQ(up.request_count(), 0u);

    // A reload that keeps it tops up what is missing only: the one idle connection stays.
    ASSERT_TRUE(gw.gw().reload(next.cfg, error)) << error;
    EXPECT_EQ(gw.gw().upstream_connections(), (counts{1, 0}));

    ASSERT_EQ(gw.chat(chat_body).status, 200u);
    EXPECT_EQ(up.connections_opened(), 1u);
    EXPECT_EQ(up.tls_handshakes(), 1u);
}

// Connections that cannot open hold back nothing: while the upstream holds the prewarm
// handshakes (a provider that accepts and never answers), the gateway is up and a request
// opens a connection of its own; a provider whose port refuses is given up at once (and
// its first request fails as it would without prewarm).
TEST(PrewarmTest, UnreachableProviderHoldsBackNeitherStartNorRequests) {
    const temp_certs certs;
    fake_upstream up(&certs.files);
    up.hold_handshakes(3);
    std::uint16_t closed_port = 0;
    {
        boost::asio::io_context ioc;
        boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
        closed_port = a.local_endpoint().port();
    } // (closed: connections to it are refused)
    const std::string refused =
        "  gone: { type: openai, base_url: \"http://127.0.0.1:" + std::to_string(closed_port) +
        "/v1\", prewarm: 4 }\n";
    gateway_harness gw(basic_config(
        up.base_url(),
        {.providers = tls_provider("tls", up, certs.files, ", prewarm: 3, connect_timeout: 60s") +
                      refused}));
    ASSERT_TRUE(up.wait_until([&] { return up.tls_held() == 3; }));
    ASSERT_TRUE(eventually([&] { return gw.gw().upstream_connections() == counts{0, 3}; }));

    const auto r = gw.chat(chat_body);
    EXPECT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(up.tls_held(), 3u); // answered on its own connection, the held ones still held
    EXPECT_EQ(up.request_count(), 1u);
    const auto gone =
        gw.chat(R"({"model":"gone/gpt-4o-mini","messages":[{"role":"user","content":"x"}]})");
    EXPECT_EQ(gone.status, 502u) << gone.body;

    up.release_handshakes();
    // The held ones complete and are kept (the request's connection is idle again too).
    ASSERT_TRUE(eventually([&] { return gw.gw().upstream_connections() == counts{4, 0}; }));
}

} // namespace
} // namespace michi::test
