// Guards through the real gateway: budgets, RPM/TPM, loop guard, allow-lists, pricing,
// and exact charging of streamed requests.
#include "support/fake_upstream.hpp"
#include "support/gateway_harness.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <thread>

namespace michi::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

TEST(GuardTest, RpmRefusesTheNextRequestWithHeadersAndRetryAfter) {
    fake_upstream up;
    gateway_harness gw(basic_config(
        up.base_url(), {.keys = key_entry("limited", "developer", limited, "    rpm: 3\n")}));
    for (int i = 0; i < 3; ++i) {
        const auto r = gw.chat(priced_chat(10), limited);
        ASSERT_EQ(r.status, 200u) << r.body;
        EXPECT_EQ(r.headers.at("x-ratelimit-limit-requests"), "3");
        EXPECT_EQ(r.headers.at("x-ratelimit-remaining-requests"), std::to_string(2 - i));
        EXPECT_TRUE(r.headers.contains("x-ratelimit-reset-requests"));
    }
    const auto refused = gw.chat(priced_chat(10), limited);
    EXPECT_EQ(refused.status, 429u);
    EXPECT_EQ(json::parse(refused.body)["error"]["code"], "rate_limit_exceeded");
    EXPECT_GE(std::stoi(refused.headers.at("retry-after")), 1);
    EXPECT_EQ(refused.headers.at("x-ratelimit-remaining-requests"), "0");
    EXPECT_EQ(up.request_count(), 3u);
    // Another key is not affected.
    EXPECT_EQ(gw.chat(priced_chat(10)).status, 200u);
}

TEST(GuardTest, TpmCountsActualTokens) {
    fake_upstream up;
    up.set_handler(usage_echoing);
    gateway_harness gw(basic_config(
        up.base_url(), {.keys = key_entry("limited", "developer", limited, "    tpm: 1000\n")}));
    EXPECT_EQ(gw.chat(priced_chat(600), limited).status, 200u);
    const auto second = gw.chat(priced_chat(400), limited);
    EXPECT_EQ(second.status, 200u); // 610 used, below 1000: admitted, and it may cross (1020)
    const auto third = gw.chat(priced_chat(10), limited);
    EXPECT_EQ(third.status, 429u);
    EXPECT_EQ(json::parse(third.body)["error"]["code"], "rate_limit_exceeded");
    EXPECT_EQ(third.headers.at("x-ratelimit-limit-tokens"), "1000");
}

TEST(GuardTest, DailyBudgetRefusesWith403NamingTheWindowAndReset) {
    fake_upstream up;
    up.set_handler(usage_echoing);
    // fake/gpt-test costs $2 per million output tokens: max_tokens 100000 is $0.20.
    gateway_harness gw(
        basic_config(up.base_url(),
                     {.keys = key_entry("limited", "developer", limited, "    daily_usd: 0.5\n")}));
    EXPECT_EQ(gw.chat(priced_chat(100000), limited).status, 200u);
    EXPECT_EQ(gw.chat(priced_chat(100000), limited).status, 200u);
    // $0.40 < $0.50: the last may cross
    EXPECT_EQ(gw.chat(priced_chat(100000), limited).status, 200u);
    const auto refused = gw.chat(priced_chat(10), limited);
    ASSERT_EQ(refused.status, 403u);
    const auto err = json::parse(refused.body)["error"];
    EXPECT_EQ(err["code"], "budget_exceeded");
    const auto msg = err["message"].get<std::string>();
    EXPECT_NE(msg.find("Daily"), std::string::npos) << msg;
    EXPECT_NE(msg.find("T00:00:00Z"), std::string::npos) << msg;
    EXPECT_NEAR(gw.gw().state().ledger().spent_today("limited"), 0.6, 1e-3);
    EXPECT_EQ(up.request_count(), 3u);
}

TEST(GuardTest, ConcurrentRequestsOverspendAtMostOneRequest) {
    fake_upstream up;
    up.set_handler([](const recorded_request& req) {
        auto r = usage_echoing(req);
        r.head_delay = 50ms; // keep them in flight together
        return r;
    });
    gateway_harness gw(
        basic_config(up.base_url(),
                     {.server = "  threads: 2\n",
                      .keys = key_entry("limited", "developer", limited, "    daily_usd: 2.0\n")}));
    constexpr int n = 40; // each $0.20: the budget is worth 10
    std::atomic<int> ok{0};
    std::atomic<int> refused{0};
    std::vector<std::thread> clients;
    for (int i = 0; i < n; ++i) {
        clients.emplace_back([&] {
            const auto r = gw.chat(priced_chat(100000), limited);
            (r.status == 200 ? ok : refused)++;
        });
    }
    for (auto& t : clients) {
        t.join();
    }
    const double cost = 100000 * 2.0 / 1e6 + 10 * 1.0 / 1e6;
    const double spent = gw.gw().state().ledger().spent_today("limited");
    EXPECT_EQ(ok + refused, n);
    EXPECT_LE(spent, 2.0 + cost + 1e-9);
    EXPECT_GE(ok.load(), 9);
    EXPECT_LE(ok.load(), 11);
    EXPECT_NEAR(spent, ok * cost, 1e-6);
    EXPECT_NEAR(gw.gw().state().ledger().reserved("limited"), 0.0, 1e-9);
}

TEST(GuardTest, StreamsAreChargedLikeNonStreamsAndTheExtraUsageChunkIsHidden) {
    fake_upstream up;
    up.set_handler(usage_echoing);
    gateway_harness gw(
        basic_config(up.base_url(),
                     {.keys = key_entry("limited", "developer", limited, "    daily_usd: 100\n")}));
    auto& ledger = gw.gw().state().ledger();
    ASSERT_EQ(gw.chat(priced_chat(5000), limited).status, 200u);
    const double non_stream = ledger.spent_today("limited");
    const auto s = gw.chat(priced_chat(5000, true), limited);
    ASSERT_EQ(s.status, 200u);
    EXPECT_NEAR(ledger.spent_today("limited") - non_stream, non_stream, 1e-9);
    // The gateway asked upstream for usage, but the client did not: it does not see it,
    // and every other byte is as upstream sent it.
    EXPECT_TRUE(json::parse(up.requests().back().body)["stream_options"]["include_usage"]);
    EXPECT_EQ(s.body.find("\"usage\""), std::string::npos) << s.body;
    EXPECT_EQ(s.body,
              "data: {\"id\":\"s\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
              "\"delta\":{\"content\":\"hi\"}}]}\n\n"
              "data: {\"id\":\"s\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
              "\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
              "data: [DONE]\n\n");
    // A client that asks for usage gets it.
    auto with_usage = json::parse(priced_chat(5000, true));
    with_usage["stream_options"] = {{"include_usage", true}};
    const auto u = gw.chat(with_usage.dump(), limited);
    EXPECT_NE(u.body.find("\"usage\""), std::string::npos);
    EXPECT_NEAR(ledger.spent_today("limited"), 3 * non_stream, 1e-9);
}

TEST(GuardTest, StreamCutMidwayIsChargedForWhatWasRelayed) {
    fake_upstream up;
    up.set_handler([](const recorded_request&) {
        fake_response r;
        r.headers = {{"content-type", "text/event-stream"}};
        r.chunks = {"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" +
                        std::string(4000, 'a') + "\"}}]}\n\n",
                    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b"};
        r.cut_after_chunks = true;
        return r;
    });
    gateway_harness gw(
        basic_config(up.base_url(),
                     {.keys = key_entry("limited", "developer", limited, "    daily_usd: 100\n")}));
    const auto r = gw.chat(priced_chat(100000, true), limited);
    EXPECT_EQ(r.status, 200u);
    EXPECT_NE(r.body.find("upstream_error"), std::string::npos);
    // 4000 characters relayed ~ 1000 output tokens at $2/M, plus the prompt estimate.
    const double spent = gw.gw().state().ledger().spent_today("limited");
    EXPECT_GT(spent, 1000 * 2.0 / 1e6 * 0.99);
    EXPECT_LT(spent, 1100 * 2.0 / 1e6);
    EXPECT_NEAR(gw.gw().state().ledger().reserved("limited"), 0.0, 1e-12);
}

TEST(GuardTest, UnpricedModelRefusedForBudgetKeysOnly) {
    fake_upstream up;
    gateway_harness gw(basic_config(
        up.base_url(),
        {.models = "  fake/unpriced: {}\n",
         .keys = key_entry("limited", "developer", limited, "    monthly_usd: 10\n")}));
    const auto r = gw.chat(priced_chat(10, false, "fake/unpriced"), limited);
    EXPECT_EQ(r.status, 403u);
    const auto err = json::parse(r.body)["error"];
    EXPECT_EQ(err["code"], "model_not_priced");
    EXPECT_NE(err["message"].get<std::string>().find("fake/unpriced"), std::string::npos);
    EXPECT_EQ(gw.chat(priced_chat(10, false, "fake/unpriced")).status, 200u); // no budget: fine
    EXPECT_EQ(up.request_count(), 1u);
}

TEST(GuardTest, LoopGuardRefusesTheSameBodyForAgentKeys) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url(), {.keys = key_entry("bot", "agent", agent,
                                                                      "    loop_max: 2\n"
                                                                      "    loop_window: 60s\n")}));
    EXPECT_EQ(gw.chat(priced_chat(7), agent).status, 200u);
    EXPECT_EQ(gw.chat(priced_chat(7), agent).status, 200u);
    const auto looped = gw.chat(priced_chat(7), agent);
    EXPECT_EQ(looped.status, 429u);
    EXPECT_EQ(json::parse(looped.body)["error"]["code"], "loop_detected");
    EXPECT_EQ(gw.chat(priced_chat(8), agent).status, 200u); // a different body is fine
    // Developer keys have no loop guard.
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(gw.chat(priced_chat(7)).status, 200u);
    }
}

TEST(GuardTest, ModelAllowListGlobs) {
    fake_upstream up;
    gateway_harness gw(basic_config(
        up.base_url(),
        {.keys = key_entry("limited", "developer", limited, "    models: [\"echo/*\"]\n")}));
    const auto r = gw.chat(priced_chat(10), limited);
    EXPECT_EQ(r.status, 403u);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "model_not_allowed");
    EXPECT_EQ(gw.chat(priced_chat(10, false, "echo/echo-1"), limited).status, 200u);
    EXPECT_EQ(up.request_count(), 0u);
}

TEST(GuardTest, ClassDefaultsApplyAndKeysOverrideThem) {
    fake_upstream up;
    const std::string other = "mk-dev-OtherOtherOtherOtherOtherOtherOther12";
    gateway_harness gw(basic_config(
        up.base_url(), {.keys = key_entry("limited", "developer", limited) +
                                key_entry("generous", "developer", other, "    rpm: 100\n"),
                        .rest = "key_classes:\n  developer: { rpm: 1 }\n"}));
    EXPECT_EQ(gw.chat(priced_chat(1), limited).status, 200u);
    EXPECT_EQ(gw.chat(priced_chat(1), limited).status, 429u);
    EXPECT_EQ(gw.chat(priced_chat(1), other).status, 200u);
    EXPECT_EQ(gw.chat(priced_chat(1), other).status, 200u);
}

} // namespace
} // namespace michi::test
