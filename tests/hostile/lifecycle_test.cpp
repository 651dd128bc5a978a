// The gateway's own lifecycle under clients that keep coming: probes and new requests while
// it drains, pooled upstream connections closed when they expire rather than kept until
// the next request happens to need them, and clients that hang up while the upstream works.

#include "hostile/hostile_support.hpp"
#include "support/fake_upstream.hpp"
#include "support/gateway_harness.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <future>

namespace michi::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

const std::string echo_chat =
    R"({"model":"echo/echo-1","messages":[{"role":"user","content":"hi"}]})";

TEST(LifecycleTest, WhileDrainingReadyzIs503HealthzIs200AndNewRequestsAre503) {
    fake_upstream up;
    std::promise<void> release;
    auto released = release.get_future().share();
    up.set_handler([released](const recorded_request& req) {
        released.wait_for(30s); // held until the test has looked at the draining gateway
        return default_chat_completion(req);
    });
    gateway_harness gw(basic_config(up.base_url()));
    const std::string slow_chat =
        R"({"model":"fake/gpt-test","messages":[{"role":"user","content":"slow"}]})";
    auto in_flight = std::async(std::launch::async, [&] { return gw.chat(slow_chat); });
    ASSERT_TRUE(up.wait_until([&] { return up.request_count() == 1; }));

    auto drained = std::async(std::launch::async, [&] { return gw.gw().drain(20s); });
    ASSERT_TRUE(eventually([&] { return gw.gw().state().inflight.draining.load(); }));

    const auto ready = gw.request(http::verb::get, "/readyz");
    EXPECT_EQ(ready.status, 503u) << ready.body;
    const auto ready_v1 = gw.request(http::verb::get, "/v1/readyz");
    EXPECT_EQ(ready_v1.status, 503u);
    const auto health = gw.request(http::verb::get, "/healthz");
    EXPECT_EQ(health.status, 200u) << health.body;
    const auto refused = gw.chat(echo_chat);
    EXPECT_EQ(refused.status, 503u) << refused.body;
    ASSERT_TRUE(refused.headers.contains("connection"));
    EXPECT_EQ(refused.headers.at("connection"), "close");
    const auto err = json::parse(refused.body, nullptr, false);
    ASSERT_TRUE(err.is_object()) << refused.body;
    EXPECT_EQ(err["error"]["code"], "unavailable") << refused.body;
    EXPECT_EQ(gw.request(http::verb::get, "/v1/models").status, 503u);
    // The drain is still waiting for the request that was in flight when it began.
    EXPECT_EQ(drained.wait_for(0s), std::future_status::timeout);

    release.set_value();
    const auto finished = in_flight.get();
    EXPECT_EQ(finished.status, 200u) << finished.body;
    EXPECT_TRUE(drained.get()); // idle: the drain ends before its timeout
}

TEST(LifecycleTest, IdlePooledUpstreamConnectionsAreClosedWhenTheyExpire) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    const std::string chat =
        R"({"model":"fake/gpt-test","messages":[{"role":"user","content":"hi"}]})";
    ASSERT_EQ(gw.chat(chat).status, 200u);
    EXPECT_EQ(up.connections_opened(), 1u);
    EXPECT_EQ(up.connections_closed(), 0u); // pooled
    // Nothing else happens on the gateway: the pool's own sweep closes the connection once
    // it has been idle for 20 s (plus the sweep's second of slack).
    const auto idle_since = std::chrono::steady_clock::now();
    ASSERT_TRUE(up.wait_until([&] { return up.connections_closed() == 1; }, 40s));
    const auto idle_for = std::chrono::steady_clock::now() - idle_since;
    EXPECT_GE(idle_for, 19s);
    EXPECT_LE(idle_for, 30s);
    // The next request opens a new connection.
    ASSERT_EQ(gw.chat(chat).status, 200u);
    EXPECT_EQ(up.connections_opened(), 2u);
}

TEST(LifecycleTest, AClientThatHangsUpBeforeTheAnswerEndsTheUpstreamAttemptAtOnce) {
    fake_upstream up;
    up.set_handler([](const recorded_request& req) {
        auto r = default_chat_completion(req);
        r.head_delay = 60s; // a long generation: the answer's head comes at its end
        return r;
    });
    gateway_harness gw(basic_config(up.base_url()));
    const std::string body =
        R"({"model":"fake/gpt-test","messages":[{"role":"user","content":"a long one"}]})";
    raw_client client(gw.port());
    client.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                std::string(test_secret) +
                "\r\nContent-Type: application/json\r\nContent-Length: " +
                std::to_string(body.size()) + "\r\n\r\n" + body);
    ASSERT_TRUE(up.wait_until([&] { return up.request_count() == 1; }));
    ASSERT_TRUE(eventually([&] { return gw.gw().state().inflight.now() == 1; }));
    client.close();
    // Noticed while the upstream still works: the request ends (and its upstream connection
    // with it) long before the upstream would have answered.
    EXPECT_TRUE(eventually([&] { return gw.gw().state().inflight.now() == 0; }));
    const auto metrics = gw.request(http::verb::get, "/metrics");
    EXPECT_NE(metrics.body.find("outcome=\"client_closed\""), std::string::npos);
}

} // namespace
} // namespace michi::test
