// Telemetry and the admin API through the real gateway: metrics, keys, usage, routes.
#include "support/fake_upstream.hpp"
#include "support/gateway_harness.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>

namespace michi::test {
namespace {

using json = nlohmann::json;

std::string admin_config(const std::string& url, config_parts parts = {}) {
    parts.rest += admin_section();
    return basic_config(url, parts);
}

// The value of one Prometheus sample line ("name{labels} value"), 0 when absent.
double sample(const std::string& text, const std::string& series) {
    const auto pos = text.find("\n" + series + " ");
    if (pos == std::string::npos) {
        return 0;
    }
    return std::stod(text.substr(pos + series.size() + 2));
}

const std::string echo_chat =
    R"({"model":"echo/echo-1","messages":[{"role":"user","content":"count me"}]})";

TEST(AdminTest, MetricsMoveWithTraffic) {
    fake_upstream up;
    config_parts parts; // a model label names a configured model (any other is "other")
    parts.models = "  echo/echo-1: { input_per_mtok: 0, output_per_mtok: 0 }\n";
    gateway_harness gw(admin_config(up.base_url(), parts));
    const std::string series =
        R"(michi_requests_total{key_class="developer",model="echo/echo-1",status="200"})";
    const auto before = gw.request(http::verb::get, "/metrics", "", {});
    ASSERT_EQ(before.status, 200u);
    EXPECT_NE(before.headers.at("content-type").find("text/plain"), std::string::npos);
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(gw.chat(echo_chat).status, 200u);
    }
    ASSERT_EQ(
        gw.chat(R"({"model":"fake/gpt-test","messages":[{"role":"user","content":"x"}]})").status,
        200u);
    const auto after = gw.request(http::verb::get, "/metrics", "", {}).body;
    EXPECT_EQ(sample(after, series) - sample(before.body, series), 3);
    EXPECT_GE(sample(after, R"(michi_upstream_attempts_total{provider="fake",outcome="ok"})"), 1);
    EXPECT_GT(sample(after, R"(michi_tokens_total{direction="in"})"), 0);
    EXPECT_NE(after.find("michi_request_duration_seconds_bucket"), std::string::npos);
    EXPECT_NE(after.find("michi_inflight_requests"), std::string::npos);
}

TEST(AdminTest, KeyLifecycleCreateUseLimitRevoke) {
    fake_upstream up;
    gateway_harness gw(admin_config(up.base_url()));
    const auto created =
        gw.request(http::verb::post, "/admin/keys",
                   R"({"id":"ci-bot","class":"agent","daily_usd":5})", admin_auth());
    ASSERT_EQ(created.status, 201u) << created.body;
    const auto key = json::parse(created.body);
    const std::string secret = key["secret"];
    EXPECT_TRUE(secret.starts_with("mk-agt-"));
    EXPECT_EQ(key["limits"]["daily_usd"], 5.0);

    EXPECT_EQ(gw.chat(echo_chat, secret).status, 200u);
    const auto listed =
        json::parse(gw.request(http::verb::get, "/admin/keys", "", admin_auth()).body);
    bool seen = false;
    for (const auto& k : listed["data"]) {
        EXPECT_FALSE(k.contains("secret"));
        if (k["id"] == "ci-bot") {
            seen = true;
            EXPECT_EQ(k["source"], "admin");
            EXPECT_EQ(k["live"]["rpm"], 1);
        }
    }
    EXPECT_TRUE(seen);
    const auto dup = gw.request(http::verb::post, "/admin/keys",
                                R"({"id":"tester","class":"developer"})", admin_auth());
    EXPECT_EQ(dup.status, 409u);
    const auto bad =
        gw.request(http::verb::post, "/admin/keys", R"({"id":"x","class":"robot"})", admin_auth());
    EXPECT_EQ(bad.status, 400u);
    EXPECT_EQ(json::parse(bad.body)["error"]["param"], "class");

    const auto patched =
        gw.request(http::verb::patch, "/admin/keys/ci-bot", R"({"rpm":1})", admin_auth());
    ASSERT_EQ(patched.status, 200u) << patched.body;
    EXPECT_EQ(json::parse(patched.body)["limits"]["rpm"], 1);
    EXPECT_EQ(gw.chat(echo_chat + " ", secret).status, 429u); // 1 a minute, already used

    EXPECT_EQ(gw.request(http::verb::delete_, "/admin/keys/ci-bot", "", admin_auth()).status, 200u);
    const auto refused = gw.chat(echo_chat, secret);
    EXPECT_EQ(refused.status, 401u);
    EXPECT_EQ(json::parse(refused.body)["error"]["code"], "invalid_api_key");
    // Config keys can be revoked too, effective on the next request.
    EXPECT_EQ(gw.request(http::verb::delete_, "/admin/keys/tester", "", admin_auth()).status, 200u);
    const auto config_key = gw.chat(echo_chat);
    EXPECT_EQ(config_key.status, 401u);
    EXPECT_NE(config_key.body.find("revoked"), std::string::npos);
    EXPECT_EQ(gw.request(http::verb::delete_, "/admin/keys/nobody", "", admin_auth()).status, 404u);
}

TEST(AdminTest, UsageEqualsWhatTheUpstreamReported) {
    fake_upstream up; // reports prompt 5 / completion 3 per request
    gateway_harness gw(admin_config(up.base_url()));
    for (int i = 0; i < 4; ++i) {
        ASSERT_EQ(gw.chat(R"({"model":"fake/gpt-test","messages":[{"role":"user","content":"x"}]})")
                      .status,
                  200u);
    }
    const auto r =
        gw.request(http::verb::get, "/admin/usage?group_by=model&key=tester", "", admin_auth());
    ASSERT_EQ(r.status, 200u) << r.body;
    const auto data = json::parse(r.body)["data"];
    ASSERT_EQ(data.size(), 1u) << r.body;
    EXPECT_EQ(data[0]["group"], "fake/gpt-test");
    EXPECT_EQ(data[0]["requests"], 4);
    EXPECT_EQ(data[0]["tokens_in"], 20);
    EXPECT_EQ(data[0]["tokens_out"], 12);
    EXPECT_NEAR(data[0]["cost_usd"].get<double>(), 4 * (5 * 1.0 + 3 * 2.0) / 1e6, 1e-12);
    EXPECT_EQ(data[0]["errors"], 0);
    EXPECT_GE(data[0]["p95_ms"].get<double>(), data[0]["p50_ms"].get<double>());
    const auto bad = gw.request(http::verb::get, "/admin/usage?group_by=color", "", admin_auth());
    EXPECT_EQ(bad.status, 400u);
    EXPECT_EQ(json::parse(bad.body)["error"]["param"], "group_by");
}

TEST(AdminTest, RoutesViewedAndChangedAtRunTime) {
    fake_upstream up;
    gateway_harness gw(
        admin_config(up.base_url(), {.rest = "routes:\n  main: { targets: [fake/gpt-test] }\n"}));
    const auto list =
        json::parse(gw.request(http::verb::get, "/admin/routes", "", admin_auth()).body);
    ASSERT_EQ(list["data"].size(), 1u);
    EXPECT_EQ(list["data"][0]["targets"][0], "fake/gpt-test");
    const auto put = gw.request(http::verb::put, "/admin/routes/main",
                                R"({"targets":["echo/echo-1","fake/gpt-test"]})", admin_auth());
    ASSERT_EQ(put.status, 200u) << put.body;
    const auto r = gw.chat(R"({"model":"main","messages":[{"role":"user","content":"x"}]})");
    EXPECT_EQ(r.headers.at("x-michi-model"), "echo/echo-1");
    const auto dangling = gw.request(http::verb::put, "/admin/routes/main",
                                     R"({"targets":["nope/x"]})", admin_auth());
    EXPECT_EQ(dangling.status, 400u);
    EXPECT_NE(dangling.body.find("nope/x"), std::string::npos) << dangling.body;
}

TEST(AdminTest, UnauthorisedCallsAreRefusedAndNoKeyMeansOff) {
    fake_upstream up;
    gateway_harness gw(admin_config(up.base_url()));
    EXPECT_EQ(gw.request(http::verb::get, "/admin/keys", "", {}).status, 401u);
    EXPECT_EQ(
        gw.request(http::verb::get, "/admin/keys", "", {{"authorization", "Bearer nope"}}).status,
        403u);
    // A client key is no admin key.
    EXPECT_EQ(gw.request(http::verb::get, "/admin/keys").status, 403u);
    const auto page = gw.request(http::verb::get, "/dashboard/", "", {});
    EXPECT_EQ(page.status, 200u);
    EXPECT_NE(page.headers.at("content-type").find("text/html"), std::string::npos);

    gateway_harness off(basic_config(up.base_url()));
    EXPECT_EQ(off.request(http::verb::get, "/admin/keys", "", admin_auth()).status, 404u);
    EXPECT_EQ(off.request(http::verb::get, "/dashboard/", "", {}).status, 404u);
}

} // namespace
} // namespace michi::test
