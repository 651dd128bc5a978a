// Routing through the real gateway: cool-downs, retries, auto, translated providers,
// /v1/messages and /v1/embeddings, with fake upstreams that record every call.
#include "support/fake_upstream.hpp"
#include "support/gateway_harness.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace michi::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

std::string provider_line(const std::string& name, const std::string& type, const fake_upstream& up,
                          const std::string& path = "/v1", const std::string& extra = "") {
    return "  " + name + ": { type: " + type + ", base_url: \"" + up.base_url() + path +
           "\", api_key: \"k-" + name + "\"" + extra + " }\n";
}

std::string chat(const std::string& model, bool stream = false) {
    return json{{"model", model},
                {"stream", stream},
                {"messages", {{{"role", "user"}, {"content", "hello"}}}}}
        .dump();
}

TEST(RoutingTest, A429CoolsTheTargetDownSoLaterRequestsSkipIt) {
    fake_upstream bad;
    fake_upstream good;
    bad.set_handler([](const recorded_request&) {
        auto r = json_response(429, R"({"error":{"message":"slow down"}})");
        r.headers.emplace_back("retry-after", "30");
        return r;
    });
    gateway_harness gw(basic_config(
        bad.base_url(),
        {.providers = provider_line("good", "openai", good),
         .rest = "routes:\n  chain: { targets: [fake/gpt-test, good/gpt-4o-mini] }\n"}));
    EXPECT_EQ(gw.chat(chat("chain")).status, 200u);
    EXPECT_EQ(bad.request_count(), 1u);
    for (int i = 0; i < 3; ++i) {
        const auto r = gw.chat(chat("chain"));
        EXPECT_EQ(r.status, 200u);
        EXPECT_EQ(r.headers.at("x-michi-attempts"), "1"); // straight to the next target
    }
    EXPECT_EQ(bad.request_count(), 1u);
    EXPECT_EQ(good.request_count(), 4u);
}

TEST(RoutingTest, FailuresInARowStartACooldown) {
    fake_upstream bad;
    fake_upstream good;
    bad.set_handler([](const recorded_request&) { return json_response(500, "{}"); });
    gateway_harness gw(
        basic_config(bad.base_url(),
                     {.providers = provider_line("good", "openai", good),
                      .rest = "routes:\n  chain: { targets: [fake/gpt-test, good/gpt-4o-mini] }\n"
                              "cooldown: 30s\ncooldown_failures: 2\n"}));
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(gw.chat(chat("chain")).status, 200u);
    }
    EXPECT_EQ(bad.request_count(), 2u);
    EXPECT_EQ(good.request_count(), 4u);
}

TEST(RoutingTest, RetriesTheSameTargetWithBackoffBeforeFallingBack) {
    fake_upstream flaky;
    int calls = 0;
    flaky.set_handler([&](const recorded_request& req) {
        return ++calls <= 2 ? json_response(503, "{}") : default_chat_completion(req);
    });
    gateway_harness gw(basic_config(
        flaky.base_url(),
        {.rest = "routes:\n  steady: { targets: [fake/gpt-test, echo/echo-1], retries: 2 }\n"
                 "cooldown_failures: 10\n"}));
    const auto r = gw.chat(chat("steady"));
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.headers.at("x-michi-model"), "fake/gpt-test");
    EXPECT_EQ(r.headers.at("x-michi-attempts"), "3");
    EXPECT_EQ(flaky.request_count(), 3u);
}

TEST(RoutingTest, AutoPicksTheCheapestTargetThatCanServeAndSaysWhy) {
    fake_upstream up;
    gateway_harness gw(basic_config(
        up.base_url(), {.models = "  fake/cheap: { input_per_mtok: 0.1, output_per_mtok: 0.1, "
                                  "supports_tools: false, context_window: 100000 }\n"
                                  "  fake/mid: { input_per_mtok: 1, output_per_mtok: 1 }\n"
                                  "  fake/dear: { input_per_mtok: 10, output_per_mtok: 10 }\n",
                        .rest = "routes:\n  auto: { strategy: cheapest, targets: [fake/dear, "
                                "fake/mid, fake/cheap] }\n"}));
    const auto r = gw.chat(chat("auto"));
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(r.headers.at("x-michi-model"), "fake/cheap");
    EXPECT_NE(r.headers.at("x-michi-route-reason").find("cheapest of 3"), std::string::npos)
        << r.headers.at("x-michi-route-reason");
    EXPECT_EQ(json::parse(up.requests().back().body)["model"], "cheap");

    auto with_tools = json::parse(chat("auto"));
    with_tools["tools"] = {
        {{"type", "function"}, {"function", {{"name", "f"}, {"parameters", json::object()}}}}};
    const auto t = gw.chat(with_tools.dump());
    EXPECT_EQ(t.headers.at("x-michi-model"), "fake/mid");
    EXPECT_NE(t.headers.at("x-michi-route-reason").find("fake/cheap (no tools)"),
              std::string::npos);

    auto big = json::parse(chat("auto"));
    big["max_tokens"] = 150000; // beyond fake/cheap's window
    EXPECT_EQ(gw.chat(big.dump()).headers.at("x-michi-model"), "fake/mid");
}

TEST(RoutingTest, AutoWithoutARouteUsesEveryConfiguredModel) {
    fake_upstream up;
    gateway_harness gw(basic_config(
        up.base_url(),
        {.models = "  fake/cheaper: { input_per_mtok: 0.01, output_per_mtok: 0.01 }\n"}));
    const auto r = gw.chat(chat("auto"));
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.headers.at("x-michi-model"), "fake/cheaper");
}

// --- Anthropic-type upstream -------------------------------------------------------

fake_response anthropic_answer(const recorded_request& req) {
    const auto body = json::parse(req.body);
    if (!body.value("stream", false)) {
        return json_response(
            200, R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-x",)"
                 R"("content":[{"type":"text","text":"Hi from Claude"}],"stop_reason":"end_turn",)"
                 R"("usage":{"input_tokens":12,"output_tokens":4}})");
    }
    fake_response r;
    r.headers = {{"content-type", "text/event-stream"}};
    r.chunks = {
        "event: message_start\ndata: "
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":"
        "\"assistant\",\"content\":[],\"model\":\"claude-x\",\"usage\":{\"input_tokens\":12,"
        "\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: "
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
        "\"text\":\"\"}}\n\n",
        "event: ping\ndata: {\"type\":\"ping\"}\n\n",
        "event: content_block_delta\ndata: "
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"
        "\"Hi from\"}}\n\n",
        "event: content_block_delta\ndata: "
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"
        "\" Claude\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\ndata: "
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_"
        "tokens\":4}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"};
    return r;
}

TEST(RoutingTest, AnthropicUpstreamTranslatedBothWaysStreamingIncluded) {
    fake_upstream claude;
    claude.set_handler(anthropic_answer);
    gateway_harness gw(basic_config(
        claude.base_url(),
        {.providers = provider_line("claude", "anthropic", claude, ""),
         .models = "  claude/claude-x: { input_per_mtok: 3, output_per_mtok: 15 }\n"}));
    const auto r = gw.chat(chat("claude/claude-x"));
    ASSERT_EQ(r.status, 200u) << r.body;
    const auto j = json::parse(r.body);
    EXPECT_EQ(j["choices"][0]["message"]["content"], "Hi from Claude");
    EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
    EXPECT_EQ(j["usage"]["prompt_tokens"], 12);
    const auto seen = claude.requests().front();
    EXPECT_EQ(seen.target, "/v1/messages");
    EXPECT_EQ(seen.headers.at("x-api-key"), "k-claude");
    EXPECT_FALSE(seen.headers.at("anthropic-version").empty());
    EXPECT_EQ(json::parse(seen.body)["model"], "claude-x");

    const auto s = gw.chat(chat("claude/claude-x", true));
    ASSERT_EQ(s.status, 200u);
    std::string text;
    std::size_t pos = 0;
    while ((pos = s.body.find("data: ", pos)) != std::string::npos) {
        const auto end = s.body.find("\n\n", pos);
        const auto data = s.body.substr(pos + 6, end - pos - 6);
        pos = end;
        if (data == "[DONE]") {
            continue;
        }
        const auto chunk = json::parse(data);
        EXPECT_EQ(chunk["object"], "chat.completion.chunk");
        if (!chunk["choices"].empty() && chunk["choices"][0]["delta"].contains("content")) {
            text += chunk["choices"][0]["delta"]["content"].get<std::string>();
        }
    }
    EXPECT_EQ(text, "Hi from Claude");
    EXPECT_TRUE(s.body.ends_with("data: [DONE]\n\n"));
    EXPECT_EQ(s.body.find("\"usage\""), std::string::npos); // not asked for
}

TEST(RoutingTest, AnthropicErrorsAreMappedAndFallBackOn529) {
    fake_upstream claude;
    claude.set_handler([](const recorded_request& req) {
        if (req.body.find("overloaded") != std::string::npos) {
            return json_response(
                529,
                R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
        }
        return json_response(
            400,
            R"({"type":"error","error":{"type":"invalid_request_error","message":"bad field"}})");
    });
    gateway_harness gw(
        basic_config(claude.base_url(),
                     {.providers = provider_line("claude", "anthropic", claude, ""),
                      .models = "  claude/claude-x: { input_per_mtok: 3, output_per_mtok: 15 }\n",
                      .rest = "routes:\n  c: { targets: [claude/claude-x, echo/echo-1] }\n"}));
    const auto bad = gw.chat(chat("claude/claude-x"));
    EXPECT_EQ(bad.status, 400u);
    EXPECT_EQ(json::parse(bad.body)["error"]["message"], "bad field");
    auto overloaded = json::parse(chat("c"));
    overloaded["messages"][0]["content"] = "overloaded";
    const auto fb = gw.chat(overloaded.dump());
    EXPECT_EQ(fb.status, 200u);
    EXPECT_EQ(fb.headers.at("x-michi-model"), "echo/echo-1");
}

// --- Gemini-type upstream ------------------------------------------------------------

TEST(RoutingTest, GeminiUpstreamTranslatedBothWaysStreamingIncluded) {
    fake_upstream gem;
    gem.set_handler([](const recorded_request& req) {
        const std::string answer =
            R"({"candidates":[{"content":{"role":"model","parts":[{"text":"Hi from Gemini"}]},"finishReason":"STOP"}],)"
            R"("usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":3,"totalTokenCount":12}})";
        if (req.target.find("streamGenerateContent") != std::string::npos) {
            return sse_response(
                {R"({"candidates":[{"content":{"role":"model","parts":[{"text":"Hi from"}]}}]})",
                 R"({"candidates":[{"content":{"role":"model","parts":[{"text":" Gemini"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":3,"totalTokenCount":12}})"});
        }
        return json_response(200, answer);
    });
    gateway_harness gw(basic_config(
        gem.base_url(),
        {.providers = provider_line("gem", "gemini", gem, ""),
         .models = "  gem/gemini-x: { input_per_mtok: 0.1, output_per_mtok: 0.4 }\n"}));
    const auto r = gw.chat(chat("gem/gemini-x"));
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(json::parse(r.body)["choices"][0]["message"]["content"], "Hi from Gemini");
    const auto seen = gem.requests().front();
    EXPECT_EQ(seen.target, "/v1beta/models/gemini-x:generateContent");
    EXPECT_EQ(seen.headers.at("x-goog-api-key"), "k-gem");

    auto streamed = json::parse(chat("gem/gemini-x", true));
    streamed["stream_options"] = {{"include_usage", true}};
    const auto s = gw.chat(streamed.dump());
    ASSERT_EQ(s.status, 200u);
    EXPECT_NE(s.body.find("Hi from"), std::string::npos);
    EXPECT_NE(s.body.find("\"prompt_tokens\":9"), std::string::npos) << s.body;
    EXPECT_TRUE(s.body.ends_with("data: [DONE]\n\n"));
    EXPECT_NE(gem.requests().back().target.find(":streamGenerateContent?alt=sse"),
              std::string::npos);
}

// --- /v1/messages and /v1/embeddings ---------------------------------------------------

TEST(RoutingTest, MessagesEndpointSpeaksAnthropicToAnOpenAIUpstream) {
    fake_upstream up;
    up.set_handler([](const recorded_request& req) {
        if (!json::parse(req.body).value("stream", false)) {
            return default_chat_completion(req);
        }
        return sse_response(
            {R"({"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"hello"}}]})",
             R"({"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" there"},"finish_reason":"stop"}]})",
             R"({"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})",
             "[DONE]"});
    });
    gateway_harness gw(basic_config(up.base_url()));
    const std::string req = R"({"model":"fake/gpt-test","max_tokens":100,"system":"be brief",)"
                            R"("messages":[{"role":"user","content":"hello"}]})";
    const auto r = gw.request(http::verb::post, "/v1/messages", req,
                              {{"x-api-key", test_secret}, {"anthropic-version", "2023-06-01"}});
    ASSERT_EQ(r.status, 200u) << r.body;
    const auto j = json::parse(r.body);
    EXPECT_EQ(j["type"], "message");
    EXPECT_EQ(j["role"], "assistant");
    EXPECT_EQ(j["content"][0]["text"], "hello from fake");
    EXPECT_EQ(j["stop_reason"], "end_turn");
    const auto seen = json::parse(up.requests().front().body);
    EXPECT_EQ(seen["messages"][0]["role"], "system");
    EXPECT_EQ(seen["max_tokens"], 100);

    auto sreq = json::parse(req);
    sreq["stream"] = true;
    const auto s =
        gw.request(http::verb::post, "/v1/messages", sreq.dump(), {{"x-api-key", test_secret}});
    ASSERT_EQ(s.status, 200u);
    EXPECT_NE(s.body.find("event: message_start"), std::string::npos) << s.body;
    EXPECT_NE(s.body.find("event: message_stop"), std::string::npos);
    EXPECT_NE(s.body.find("\"text\":\" there\""), std::string::npos) << s.body;
    EXPECT_NE(s.body.find("\"output_tokens\":2"), std::string::npos) << s.body;
    EXPECT_TRUE(json::parse(up.requests().back().body)["stream_options"]["include_usage"]);

    const auto bad = gw.request(http::verb::post, "/v1/messages", R"({"model":"fake/gpt-test"})",
                                {{"x-api-key", test_secret}});
    EXPECT_EQ(bad.status, 400u);
    EXPECT_EQ(json::parse(bad.body)["type"], "error"); // Anthropic-shaped
    const auto unauth = gw.request(http::verb::post, "/v1/messages", req, {{"x-api-key", "nope"}});
    EXPECT_EQ(unauth.status, 401u);
    EXPECT_EQ(json::parse(unauth.body)["error"]["type"], "authentication_error");
}

TEST(RoutingTest, EmbeddingsRoutedToOpenAIAndEcho) {
    fake_upstream up;
    up.set_handler([](const recorded_request&) {
        return json_response(
            200,
            R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"emb","usage":{"prompt_tokens":2,"total_tokens":2}})");
    });
    gateway_harness gw(basic_config(
        up.base_url(), {.models = "  fake/emb: { input_per_mtok: 0.02, output_per_mtok: 0 }\n"}));
    const auto r =
        gw.request(http::verb::post, "/v1/embeddings", R"({"model":"fake/emb","input":"hi"})");
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(up.requests().front().target, "/v1/embeddings");
    EXPECT_EQ(json::parse(up.requests().front().body)["model"], "emb");
    const auto e =
        gw.request(http::verb::post, "/embeddings", R"({"model":"echo/e","input":["a","b"]})");
    ASSERT_EQ(e.status, 200u);
    EXPECT_EQ(json::parse(e.body)["data"].size(), 2u);
    EXPECT_EQ(gw.request(http::verb::post, "/v1/embeddings", R"({"model":"fake/emb"})").status,
              400u);
}

} // namespace
} // namespace michi::test

namespace michi::test {
namespace {

TEST(RoutingStallTest, AStreamThatStallsAfterItsFirstEventEndsWithAnErrorEvent) {
    fake_upstream up;
    up.set_handler([](const recorded_request&) {
        fake_response r =
            sse_response({R"({"choices":[{"index":0,"delta":{"content":"first"}}]})"});
        r.end_delay = std::chrono::seconds(5); // then silence, far past the idle timeout
        return r;
    });
    gateway_harness gw(
        basic_config(up.base_url(), {.providers = "  slow: { type: openai, base_url: \"" +
                                                  up.base_url() + "/v1\", timeout: 300ms }\n"}));
    raw_client client(gw.port());
    const std::string body = chat("slow/gpt-4o-mini", true);
    client.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                std::string(test_secret) + "\r\nContent-Length: " + std::to_string(body.size()) +
                "\r\n\r\n" + body);
    const auto got = client.read_until("\r\n0\r\n\r\n");
    EXPECT_NE(got.find("first"), std::string::npos) << got;
    EXPECT_NE(got.find("upstream_error"), std::string::npos) << got;
    EXPECT_NE(got.find("stream timeout"), std::string::npos) << got;
    EXPECT_EQ(got.find("[DONE]"), std::string::npos);
}

} // namespace
} // namespace michi::test
