// /v1/messages to an Anthropic-type provider through the real gateway: the client's bytes go
// upstream unchanged but the model (its anthropic-version and anthropic-beta with them), the
// answer's bytes come back unchanged, usage and cost are read from the relayed answer or
// stream (cache reads and writes priced as the price table says), and count_tokens is passed
// through free of charge and of every budget and rate limit.
#include "support/fake_upstream.hpp"
#include "support/gateway_harness.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace michi::test {
namespace {

using json = nlohmann::json;

const std::string claude_model_lines =
    "  claude/claude-x: { upstream: claude-x-2026, input_per_mtok: 3, output_per_mtok: 15,"
    " cache_read_per_mtok: 0.3, cache_write_per_mtok: 3.75, cache_write_1h_per_mtok: 6 }\n"
    "  claude/claude-long: { upstream: claude-long, input_per_mtok: 3, output_per_mtok: 15,"
    " cache_read_per_mtok: 0.3, cache_write_per_mtok: 3.75,"
    " long_context: { above_input_tokens: 2000, input_per_mtok: 6, output_per_mtok: 22.5,"
    " cache_read_per_mtok: 0.6, cache_write_per_mtok: 7.5 } }\n";

std::string config_with_claude(const fake_upstream& claude, config_parts parts = {}) {
    parts.providers += "  claude: { type: anthropic, base_url: \"" + claude.base_url() +
                       "\", api_key: \"sk-ant-upstream\" }\n";
    parts.models += claude_model_lines;
    parts.rest += admin_section();
    return basic_config(claude.base_url(), parts);
}

std::map<std::string, std::string> anthropic_headers(const std::string& secret = test_secret) {
    return {{"x-api-key", secret},
            {"anthropic-version", "2023-06-01"},
            {"anthropic-beta", "prompt-caching-2024-07-31,context-management-2025-06-27"}};
}

// A Messages answer whose usage is `usage` (JSON text).
std::string message_answer(const std::string& usage) {
    return R"({"id":"msg_01","type":"message","role":"assistant","model":"claude-x-2026",)"
           R"("content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn",)"
           R"("stop_sequence":null,"usage":)" +
           usage + "}";
}

// Anthropic's stream for one text answer: message_start with `start_usage`, message_delta
// with `delta_usage` (both JSON text).
fake_response message_stream(const std::string& start_usage, const std::string& delta_usage) {
    fake_response r;
    r.headers = {{"content-type", "text/event-stream"}};
    r.chunks = {
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\","
        "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x-2026\",\"content\":[],"
        "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":" +
            start_usage + "}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: ping\ndata: {\"type\": \"ping\"}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi \\u00e9\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"end_turn\",\"stop_sequence\":null},\"usage\":" +
            delta_usage + "}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"};
    return r;
}

std::string joined(const fake_response& r) {
    std::string all;
    for (const auto& c : r.chunks) {
        all += c;
    }
    return all;
}

std::string messages_body(const std::string& model, bool stream) {
    return json{{"model", model},
                {"max_tokens", 64},
                {"stream", stream},
                {"messages", {{{"role", "user"}, {"content", "hi"}}}}}
        .dump();
}

// The usage row of /admin/usage for one model.
json usage_row(gateway_harness& gw, const std::string& model) {
    const auto r = gw.request(http::verb::get, "/admin/usage?group_by=model", "", admin_auth());
    const json all = json::parse(r.body, nullptr, false);
    for (const auto& row : all.is_object() ? all["data"] : json::array()) {
        if (row["group"] == model) {
            return row;
        }
    }
    return nullptr;
}

TEST(MessagesPassthroughTest, TheBodyReachesTheProviderByteForByteButTheModel) {
    fake_upstream claude;
    const std::string answer = message_answer(R"({"input_tokens":9,"output_tokens":2})");
    claude.set_handler([&](const recorded_request&) { return json_response(200, answer); });
    gateway_harness gw(config_with_claude(claude));

    // Unknown fields, odd spacing, escapes, number spellings, and a nested "model" key that
    // is not the request's: all go as they are.
    const std::string head = "{ \"system\" : [{\"type\":\"text\",\"text\":\"Be \\u00e9 brief\","
                             "\"cache_control\":{\"type\":\"ephemeral\",\"ttl\":\"1h\"}}],\n"
                             "  \"model\":\t";
    const std::string tail =
        " , \"max_tokens\":1000,\"top_k\":40,\"thinking\":{\"type\":\"enabled\","
        "\"budget_tokens\":31999},\"context_management\":{\"edits\":[{\"type\":"
        "\"clear_thinking_20251015\",\"keep\":\"all\"}]},\"output_config\":{\"effort\":\"high\"},"
        "\"metadata\":{\"user_id\":\"u-1\",\"model\":\"not/"
        "this\"},\"future_field\":[1,-0.5e-3,null,"
        "true,{\"deep\":{\"er\":[]}}],\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
        "\"text\",\"text\":\"hi \\\"there\\\"\"}]}] }";
    const auto r = gw.request(http::verb::post, "/v1/messages?beta=true",
                              head + "\"claude/claude-x\"" + tail, anthropic_headers());
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.body, answer); // the answer as it came
    EXPECT_EQ(r.headers.at("x-michi-model"), "claude/claude-x");

    ASSERT_EQ(claude.request_count(), 1u);
    const auto seen = claude.requests().front();
    EXPECT_EQ(seen.method, "POST");
    EXPECT_EQ(seen.target, "/v1/messages");
    EXPECT_EQ(seen.body, head + "\"claude-x-2026\"" + tail);
    EXPECT_EQ(seen.headers.at("x-api-key"), "sk-ant-upstream");
    EXPECT_EQ(seen.headers.at("anthropic-version"), "2023-06-01");
    EXPECT_EQ(seen.headers.at("anthropic-beta"),
              "prompt-caching-2024-07-31,context-management-2025-06-27");
    EXPECT_EQ(seen.headers.count("authorization"), 0u);
    for (const auto& [name, value] : seen.headers) {
        EXPECT_EQ(value.find(test_secret), std::string::npos) << name;
    }

    // A model written with escapes (PHP escapes slashes) is read, and swapped the same way.
    const auto escaped = gw.request(http::verb::post, "/v1/messages",
                                    head + "\"claude\\/claude-x\"" + tail, anthropic_headers());
    ASSERT_EQ(escaped.status, 200u) << escaped.body;
    EXPECT_EQ(claude.requests().back().body, head + "\"claude-x-2026\"" + tail);

    // Without the client's anthropic-version the provider still gets one; no beta is made up.
    ASSERT_EQ(gw.request(http::verb::post, "/v1/messages", messages_body("claude/claude-x", false),
                         {{"authorization", std::string("Bearer ") + test_secret}})
                  .status,
              200u);
    const auto plain = claude.requests().back();
    EXPECT_FALSE(plain.headers.at("anthropic-version").empty());
    EXPECT_EQ(plain.headers.count("anthropic-beta"), 0u);
    EXPECT_EQ(plain.body, messages_body("claude-x-2026", false));
}

TEST(MessagesPassthroughTest, AProvidersConfiguredHeadersWinOverTheClients) {
    fake_upstream claude;
    claude.set_handler([](const recorded_request&) {
        return json_response(200, message_answer(R"({"input_tokens":1,"output_tokens":1})"));
    });
    config_parts parts;
    parts.providers = "  pinned: { type: anthropic, base_url: \"" + claude.base_url() +
                      "\", api_key: \"sk-pinned\", headers: { Anthropic-Beta: \"only-this\" } }\n";
    parts.models = "  pinned/claude-x: { input_per_mtok: 1, output_per_mtok: 1 }\n";
    gateway_harness gw(config_with_claude(claude, parts));
    for (const char* model : {"pinned/claude-x", "claude/claude-x"}) {
        const auto r = gw.request(http::verb::post, "/v1/messages", messages_body(model, false),
                                  anthropic_headers());
        ASSERT_EQ(r.status, 200u) << r.body;
    }
    const auto seen = claude.requests();
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0].headers.at("anthropic-beta"), "only-this");
    EXPECT_EQ(seen[0].headers.at("x-api-key"), "sk-pinned");
    EXPECT_EQ(seen[0].headers.at("anthropic-version"), "2023-06-01");
    EXPECT_EQ(seen[1].headers.at("anthropic-beta"),
              "prompt-caching-2024-07-31,context-management-2025-06-27");
    EXPECT_EQ(seen[1].headers.at("x-api-key"), "sk-ant-upstream");
}

TEST(MessagesPassthroughTest, AStreamIsRelayedByteForByte) {
    fake_upstream claude;
    const auto stream =
        message_stream(R"({"input_tokens":9,"output_tokens":1})", R"({"output_tokens":3})");
    claude.set_handler([&](const recorded_request&) { return stream; });
    gateway_harness gw(config_with_claude(claude));
    const auto r = gw.request(http::verb::post, "/v1/messages",
                              messages_body("claude/claude-x", true), anthropic_headers());
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.body, joined(stream));
    EXPECT_EQ(r.headers.at("content-type").rfind("text/event-stream", 0), 0u);
    EXPECT_EQ(claude.requests().front().body, messages_body("claude-x-2026", true));
}

TEST(MessagesPassthroughTest, CostIsChargedFromTheAnswersUsageWithCacheReadsAndWrites) {
    fake_upstream claude;
    // Anthropic counts cache reads and writes apart from input_tokens.
    const std::string usage =
        R"({"input_tokens":100,"cache_read_input_tokens":2000,"cache_creation_input_tokens":300,)"
        R"("cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":200},)"
        R"("output_tokens":50})";
    claude.set_handler(
        [&](const recorded_request&) { return json_response(200, message_answer(usage)); });
    gateway_harness gw(config_with_claude(claude));
    const auto r = gw.request(http::verb::post, "/v1/messages",
                              messages_body("claude/claude-x", false), anthropic_headers());
    ASSERT_EQ(r.status, 200u) << r.body;
    const double want = (100 * 3 + 2000 * 0.3 + 100 * 3.75 + 200 * 6 + 50 * 15) / 1e6;
    EXPECT_NEAR(std::stod(r.headers.at("x-michi-cost-usd")), want, 1e-12);
    EXPECT_NEAR(gw.gw().state().ledger().spent_today("tester"), want, 1e-12);
    json row;
    ASSERT_TRUE(eventually([&] { return !(row = usage_row(gw, "claude/claude-x")).is_null(); }));
    EXPECT_EQ(row["tokens_in"], 2400);
    EXPECT_EQ(row["tokens_cache_read"], 2000);
    EXPECT_EQ(row["tokens_cache_write"], 300);
    EXPECT_EQ(row["tokens_out"], 50);
    EXPECT_NEAR(row["cost_usd"].get<double>(), want, 1e-12);
}

TEST(MessagesPassthroughTest, CostIsChargedFromTheRelayedStreamsUsage) {
    fake_upstream claude;
    // message_start has the input side (the 1 h cache writes split out); message_delta
    // the final output count, alone or with the input side repeated (as Anthropic now does).
    const std::string start =
        R"({"input_tokens":100,"cache_read_input_tokens":2000,"cache_creation_input_tokens":300,)"
        R"("cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":200},)"
        R"("output_tokens":1})";
    const std::string repeated =
        R"({"input_tokens":100,"cache_read_input_tokens":2000,"cache_creation_input_tokens":300,)"
        R"("output_tokens":50})";
    std::string delta = R"({"output_tokens":50})";
    claude.set_handler([&](const recorded_request&) { return message_stream(start, delta); });
    gateway_harness gw(config_with_claude(claude));
    const double want = (100 * 3 + 2000 * 0.3 + 100 * 3.75 + 200 * 6 + 50 * 15) / 1e6;
    double spent = 0;
    for (const auto& d : {std::string(R"({"output_tokens":50})"), repeated}) {
        delta = d;
        const auto r = gw.request(http::verb::post, "/v1/messages",
                                  messages_body("claude/claude-x", true), anthropic_headers());
        ASSERT_EQ(r.status, 200u) << r.body;
        spent += want;
        auto& ledger = gw.gw().state().ledger();
        EXPECT_TRUE(eventually([&] {
            return std::abs(ledger.spent_today("tester") - spent) < 1e-12;
        })) << "message_delta usage "
            << d << ": spent " << ledger.spent_today("tester") << ", expected " << spent;
    }

    // Past long_context.above_input_tokens (all input kinds: 2400 > 2000), its prices apply.
    const auto r = gw.request(http::verb::post, "/v1/messages",
                              messages_body("claude/claude-long", true), anthropic_headers());
    ASSERT_EQ(r.status, 200u) << r.body;
    json row;
    ASSERT_TRUE(eventually([&] { return !(row = usage_row(gw, "claude/claude-long")).is_null(); }));
    // The long_context entry has no 1 h write price: 1 h writes take its (5 min) write price.
    const double long_want = (100 * 6 + 2000 * 0.6 + 300 * 7.5 + 50 * 22.5) / 1e6;
    EXPECT_NEAR(row["cost_usd"].get<double>(), long_want, 1e-12) << row.dump();
    EXPECT_EQ(row["tokens_in"], 2400);
    EXPECT_EQ(row["tokens_out"], 50);
}

TEST(MessagesPassthroughTest, CountTokensIsPassedThroughFreeAndWithoutBudgetOrRateLimit) {
    fake_upstream claude;
    claude.set_handler([](const recorded_request& req) {
        if (req.target == "/v1/messages/count_tokens") {
            return json_response(200, R"({"input_tokens":1234})");
        }
        return json_response(200, message_answer(R"({"input_tokens":100000,"output_tokens":1})"));
    });
    // A key whose day's budget the first message spends, allowed two requests a minute.
    config_parts parts;
    parts.keys = key_entry("limited", "developer", limited, "    daily_usd: 0.1\n    rpm: 2\n");
    parts.models = "  claude/unpriced: { upstream: unpriced }\n";
    gateway_harness gw(config_with_claude(claude, parts));
    const auto spend =
        gw.request(http::verb::post, "/v1/messages", messages_body("claude/claude-x", false),
                   anthropic_headers(limited));
    ASSERT_EQ(spend.status, 200u) << spend.body;
    const double spent = gw.gw().state().ledger().spent_today("limited");
    EXPECT_GE(spent, 0.3);
    const auto refused =
        gw.request(http::verb::post, "/v1/messages", messages_body("claude/claude-x", false),
                   anthropic_headers(limited));
    EXPECT_EQ(refused.status, 403u) << refused.body;

    const std::string count =
        R"({"model":"claude/claude-x","system":"Be brief.","messages":[{"role":"user","content":"hi"}],"tools":[]})";
    for (int i = 0; i < 4; ++i) { // past the budget and past rpm
        const auto r = gw.request(http::verb::post, "/v1/messages/count_tokens", count,
                                  anthropic_headers(limited));
        ASSERT_EQ(r.status, 200u) << r.body;
        EXPECT_EQ(r.body, R"({"input_tokens":1234})");
    }
    const auto seen = claude.requests().back();
    EXPECT_EQ(seen.target, "/v1/messages/count_tokens");
    EXPECT_EQ(
        seen.body,
        R"({"model":"claude-x-2026","system":"Be brief.","messages":[{"role":"user","content":"hi"}],"tools":[]})");
    EXPECT_EQ(seen.headers.at("anthropic-beta"),
              "prompt-caching-2024-07-31,context-management-2025-06-27");
    // An unpriced model may be counted for a key with a budget; echo is counted here.
    const auto unpriced =
        gw.request(http::verb::post, "/v1/messages/count_tokens",
                   R"({"model":"claude/unpriced","messages":[{"role":"user","content":"hi"}]})",
                   anthropic_headers(limited));
    EXPECT_EQ(unpriced.status, 200u) << unpriced.body;
    const auto local = gw.request(
        http::verb::post, "/v1/messages/count_tokens",
        R"({"model":"echo/echo-1","messages":[{"role":"user","content":"hi there, count me"}]})",
        anthropic_headers(limited));
    ASSERT_EQ(local.status, 200u) << local.body;
    EXPECT_GT(json::parse(local.body)["input_tokens"].get<int>(), 0);
    EXPECT_EQ(claude.request_count(), 6u); // 1 message, 4 + 1 counts; echo is the gateway's

    EXPECT_DOUBLE_EQ(gw.gw().state().ledger().spent_today("limited"), spent);
    const auto usage =
        gw.request(http::verb::get, "/admin/usage?key=limited&group_by=model", "", admin_auth());
    double cost = 0;
    const json rows = json::parse(usage.body)["data"];
    for (const auto& row : rows) {
        cost += row["cost_usd"].get<double>();
    }
    EXPECT_NEAR(cost, spent, 1e-12) << usage.body;
}

} // namespace
} // namespace michi::test
