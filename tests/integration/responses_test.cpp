// POST /v1/responses through the real gateway: passed through to a provider that speaks the
// Responses API, translated (through chat) to chat-only, Anthropic and Gemini upstreams,
// plain and streamed; what the client gets, what the upstream saw, and what was charged.
#include "support/fake_upstream.hpp"
#include "support/gateway_harness.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace michi::test {
namespace {

using json = nlohmann::json;

const std::string secret_header = std::string("Bearer ") + test_secret;

http_reply responses(gateway_harness& gw, const std::string& body) {
    return gw.request(http::verb::post, "/v1/responses", body, {{"authorization", secret_header}});
}

// The value of a counter line of /metrics ("name{labels} value"), or -1.
double metric(gateway_harness& gw, const std::string& series) {
    const auto m = gw.request(http::verb::get, "/metrics", "", {});
    const auto at = m.body.find(series + " ");
    if (at == std::string::npos) {
        return -1;
    }
    return std::stod(m.body.substr(at + series.size() + 1));
}

// The events of an SSE body: (event name, data parsed).
std::vector<std::pair<std::string, json>> events_of(const std::string& body) {
    std::vector<std::pair<std::string, json>> out;
    std::string name;
    std::size_t pos = 0;
    while (pos < body.size()) {
        auto end = body.find('\n', pos);
        if (end == std::string::npos) {
            end = body.size();
        }
        const std::string line = body.substr(pos, end - pos);
        pos = end + 1;
        if (line.rfind("event: ", 0) == 0) {
            name = line.substr(7);
        } else if (line.rfind("data: ", 0) == 0) {
            out.emplace_back(name, json::parse(line.substr(6), nullptr, false));
            name.clear();
        }
    }
    return out;
}

std::string chat_chunk(const json& delta, const json& finish = nullptr) {
    return "data: " +
           json({{"id", "c1"},
                 {"object", "chat.completion.chunk"},
                 {"created", 1},
                 {"model", "gpt-test"},
                 {"choices", {{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}}}})
               .dump() +
           "\n\n";
}

const std::string usage_chunk =
    R"(data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-test",)"
    R"("choices":[],"usage":{"prompt_tokens":21,"completion_tokens":5,"total_tokens":26}})"
    "\n\n";

config_parts with_responses_provider(const std::string& base_url) {
    config_parts parts;
    parts.providers = "  oai: { type: openai, base_url: \"" + base_url +
                      "/v1\", api_key: \"sk-oai\", apis: [chat, responses] }\n";
    parts.models = "  oai/gpt-test: { upstream: gpt-upstream, input_per_mtok: 1, "
                   "output_per_mtok: 2 }\n";
    return parts;
}

// ---- passthrough -----------------------------------------------------------------------------

TEST(ResponsesApiTest, PassedThroughToAResponsesProviderUnchangedButTheModel) {
    fake_upstream up;
    const std::string answer =
        R"({"id":"resp_up","object":"response","status":"completed","model":"gpt-upstream",)"
        R"("output":[{"id":"msg_1","type":"message","status":"completed","role":"assistant",)"
        R"("content":[{"type":"output_text","text":"hi there","annotations":[]}]}],)"
        R"("usage":{"input_tokens":40,"input_tokens_details":{"cached_tokens":8},)"
        R"("output_tokens":7,"output_tokens_details":{"reasoning_tokens":2},"total_tokens":47}})";
    up.set_handler([&](const recorded_request&) { return json_response(200, answer); });
    gateway_harness gw(basic_config(up.base_url(), with_responses_provider(up.base_url())));

    // Fields no translation carries reach a Responses provider: stored state included.
    const std::string body =
        R"({"model":"oai/gpt-test","input":"hi","previous_response_id":"resp_0",)"
        R"("include":["reasoning.encrypted_content"],"store":true,)"
        R"("tools":[{"type":"web_search"}]})";
    const auto r = responses(gw, body);
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.body, answer);
    EXPECT_EQ(r.headers.at("x-michi-model"), "oai/gpt-test");
    ASSERT_EQ(up.request_count(), 1u);
    const auto seen = up.requests().front();
    EXPECT_EQ(seen.target, "/v1/responses");
    EXPECT_EQ(seen.headers.at("authorization"), "Bearer sk-oai");
    std::string expected = body;
    expected.replace(expected.find("oai/gpt-test"), 12, "gpt-upstream");
    EXPECT_EQ(seen.body, expected);
    // Charged from the answer's usage: 40 in (8 cached), 7 out.
    EXPECT_EQ(metric(gw, R"(michi_tokens_total{direction="in"})"), 40);
    EXPECT_EQ(metric(gw, R"(michi_tokens_total{direction="out"})"), 7);
}

TEST(ResponsesApiTest, PassedThroughStreamIsRelayedAsItCameAndCharged) {
    fake_upstream up;
    const std::vector<std::string> events = {
        "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,"
        "\"response\":{\"id\":\"resp_up\",\"object\":\"response\",\"status\":\"in_progress\","
        "\"output\":[]}}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\","
        "\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,"
        "\"delta\":\"hi\"}\n\n",
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,"
        "\"response\":{\"id\":\"resp_up\",\"object\":\"response\",\"status\":\"completed\","
        "\"output\":[],\"usage\":{\"input_tokens\":30,\"input_tokens_details\":"
        "{\"cached_tokens\":0},\"output_tokens\":4,\"output_tokens_details\":"
        "{\"reasoning_tokens\":0},\"total_tokens\":34}}}\n\n"};
    up.set_handler([&](const recorded_request&) {
        fake_response r;
        r.headers = {{"content-type", "text/event-stream"}};
        r.chunks = events;
        return r;
    });
    gateway_harness gw(basic_config(up.base_url(), with_responses_provider(up.base_url())));
    const auto r = responses(gw, R"({"model":"oai/gpt-test","input":"hi","stream":true})");
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.body, events[0] + events[1] + events[2]);
    EXPECT_EQ(up.requests().front().target, "/v1/responses");
    EXPECT_EQ(up.requests().front().body, R"({"model":"gpt-upstream","input":"hi","stream":true})");
    EXPECT_EQ(metric(gw, R"(michi_tokens_total{direction="in"})"), 30);
    EXPECT_EQ(metric(gw, R"(michi_tokens_total{direction="out"})"), 4);
}

// ---- translated ------------------------------------------------------------------------------

TEST(ResponsesApiTest, TranslatedToAChatOnlyUpstream) {
    fake_upstream up;
    up.set_handler([](const recorded_request&) {
        return json_response(
            200,
            R"({"id":"c1","object":"chat.completion","created":1,"model":"gpt-test","choices":)"
            R"([{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":)"
            R"("call_1","type":"function","function":{"name":"weather","arguments":)"
            R"("{\"city\":\"Oslo\"}"}}]},"finish_reason":"tool_calls"}],"usage":)"
            R"({"prompt_tokens":21,"completion_tokens":5,"total_tokens":26,)"
            R"("prompt_tokens_details":{"cached_tokens":16}}})");
    });
    gateway_harness gw(basic_config(up.base_url()));
    const auto r = responses(
        gw, R"({"model":"fake/gpt-test","instructions":"Be brief.","input":[)"
            R"({"role":"user","content":[{"type":"input_text","text":"weather in Oslo?"}]}],)"
            R"("tools":[{"type":"function","name":"weather","parameters":{"type":"object"},)"
            R"("strict":false}],"max_output_tokens":50,"store":false,"metadata":{"a":"b"}})");
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.headers.at("content-type"), "application/json");
    const json out = json::parse(r.body);
    EXPECT_EQ(out["object"], "response");
    EXPECT_EQ(out["id"].get<std::string>().rfind("resp_", 0), 0u);
    EXPECT_EQ(out["status"], "completed");
    EXPECT_EQ(out["model"], "fake/gpt-test");
    ASSERT_EQ(out["output"].size(), 1u) << r.body;
    EXPECT_EQ(out["output"][0]["type"], "function_call");
    EXPECT_EQ(out["output"][0]["call_id"], "call_1");
    EXPECT_EQ(out["output"][0]["name"], "weather");
    EXPECT_EQ(out["output"][0]["arguments"], R"({"city":"Oslo"})");
    EXPECT_EQ(out["usage"]["input_tokens"], 21);
    EXPECT_EQ(out["usage"]["input_tokens_details"]["cached_tokens"], 16);
    EXPECT_EQ(out["usage"]["output_tokens"], 5);
    EXPECT_EQ(out["usage"]["total_tokens"], 26);

    ASSERT_EQ(up.request_count(), 1u);
    const auto seen = up.requests().front();
    EXPECT_EQ(seen.target, "/v1/chat/completions");
    const json sent = json::parse(seen.body);
    EXPECT_EQ(sent["model"], "gpt-test");
    EXPECT_EQ(sent["messages"], json::parse(R"([{"role":"system","content":"Be brief."},)"
                                            R"({"role":"user","content":"weather in Oslo?"}])"));
    EXPECT_EQ(sent["tools"][0]["function"]["name"], "weather");
    EXPECT_EQ(sent["max_completion_tokens"], 50);
    EXPECT_FALSE(sent.contains("metadata"));
    EXPECT_FALSE(sent.contains("store"));
    // Charged like chat, from the pivot's usage ($1 in, $2 out per million).
    EXPECT_EQ(metric(gw, R"(michi_tokens_total{direction="in"})"), 21);
    EXPECT_EQ(metric(gw, R"(michi_tokens_total{direction="out"})"), 5);
    EXPECT_EQ(r.headers.at("x-michi-cost-usd").substr(0, 8), "0.000031");
}

TEST(ResponsesApiTest, TranslatedStreamFromAChatOnlyUpstream) {
    fake_upstream up;
    up.set_handler([](const recorded_request&) {
        fake_response r;
        r.headers = {{"content-type", "text/event-stream"}};
        r.chunks = {chat_chunk({{"role", "assistant"}, {"content", ""}}),
                    chat_chunk({{"content", "Hel"}}),
                    chat_chunk({{"content", "lo"}}),
                    chat_chunk(json::object(), "stop"),
                    usage_chunk,
                    "data: [DONE]\n\n"};
        return r;
    });
    gateway_harness gw(basic_config(up.base_url()));
    const auto r = responses(gw, R"({"model":"fake/gpt-test","input":"hi","stream":true})");
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.headers.at("content-type"), "text/event-stream");
    const auto events = events_of(r.body);
    std::vector<std::string> types;
    for (std::size_t i = 0; i < events.size(); ++i) {
        EXPECT_EQ(events[i].first, events[i].second["type"]);
        EXPECT_EQ(events[i].second["sequence_number"], i);
        types.push_back(events[i].first);
    }
    EXPECT_EQ(types,
              (std::vector<std::string>{"response.created", "response.in_progress",
                                        "response.output_item.added", "response.content_part.added",
                                        "response.output_text.delta", "response.output_text.delta",
                                        "response.output_text.done", "response.content_part.done",
                                        "response.output_item.done", "response.completed"}));
    const json& done = events.back().second["response"];
    EXPECT_EQ(done["output"][0]["content"][0]["text"], "Hello");
    EXPECT_EQ(done["usage"]["input_tokens"], 21);
    EXPECT_EQ(done["usage"]["output_tokens"], 5);
    EXPECT_EQ(r.body.find("[DONE]"), std::string::npos);

    const json sent = json::parse(up.requests().front().body);
    EXPECT_EQ(up.requests().front().target, "/v1/chat/completions");
    EXPECT_EQ(sent["stream"], true);
    EXPECT_EQ(sent["stream_options"]["include_usage"], true);
    EXPECT_EQ(metric(gw, R"(michi_tokens_total{direction="in"})"), 21);
    EXPECT_EQ(metric(gw, R"(michi_tokens_total{direction="out"})"), 5);
}

TEST(ResponsesApiTest, StreamBrokenAfterItStartedEndsWithResponseFailed) {
    fake_upstream up;
    up.set_handler([](const recorded_request&) {
        fake_response r;
        r.headers = {{"content-type", "text/event-stream"}};
        r.chunks = {chat_chunk({{"role", "assistant"}, {"content", "Hel"}}),
                    chat_chunk({{"content", "lo"}}), "data: {\"cho"};
        r.cut_after_chunks = true;
        return r;
    });
    gateway_harness gw(basic_config(up.base_url()));
    const auto r = responses(gw, R"({"model":"fake/gpt-test","input":"hi","stream":true})");
    ASSERT_EQ(r.status, 200u) << r.body;
    const auto events = events_of(r.body);
    ASSERT_FALSE(events.empty()) << r.body;
    EXPECT_EQ(events.front().first, "response.created");
    const auto& [name, last] = events.back();
    EXPECT_EQ(name, "response.failed") << r.body;
    EXPECT_EQ(last["response"]["status"], "failed");
    EXPECT_EQ(last["response"]["id"], events.front().second["response"]["id"]);
    EXPECT_NE(last["response"]["error"]["message"].get<std::string>().find("broke off"),
              std::string::npos);
    EXPECT_EQ(last["response"]["output"][0]["content"][0]["text"], "Hello");
    EXPECT_EQ(r.body.find("response.completed"), std::string::npos);
}

TEST(ResponsesApiTest, TranslatedToAnAnthropicUpstream) {
    fake_upstream up;
    up.set_handler([](const recorded_request&) {
        return json_response(
            200, R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-x",)"
                 R"("content":[{"type":"text","text":"Bonjour"}],"stop_reason":"end_turn",)"
                 R"("usage":{"input_tokens":12,"output_tokens":3}})");
    });
    config_parts parts;
    parts.providers =
        "  claude: { type: anthropic, base_url: \"" + up.base_url() + "\", api_key: \"sk-ant\" }\n";
    parts.models = "  claude/x: { upstream: claude-x, input_per_mtok: 3, output_per_mtok: 15 }\n";
    gateway_harness gw(basic_config(up.base_url(), parts));
    const auto r =
        responses(gw, R"({"model":"claude/x","instructions":"Answer in French.","input":"hello",)"
                      R"("max_output_tokens":100,"reasoning":{"effort":"low"}})");
    ASSERT_EQ(r.status, 200u) << r.body;
    const json out = json::parse(r.body);
    EXPECT_EQ(out["object"], "response");
    EXPECT_EQ(out["model"], "claude/x");
    EXPECT_EQ(out["output"][0]["content"][0]["text"], "Bonjour");
    EXPECT_EQ(out["usage"]["input_tokens"], 12);
    EXPECT_EQ(out["usage"]["output_tokens"], 3);
    const auto seen = up.requests().front();
    EXPECT_EQ(seen.target, "/v1/messages");
    const json sent = json::parse(seen.body);
    EXPECT_EQ(sent["model"], "claude-x");
    EXPECT_NE(sent["system"].dump().find("Answer in French."), std::string::npos) << seen.body;
    EXPECT_NE(sent["messages"][0].dump().find("hello"), std::string::npos) << seen.body;
    EXPECT_TRUE(sent.contains("thinking")) << seen.body; // reasoning effort as a budget
    EXPECT_EQ(metric(gw, R"(michi_tokens_total{direction="in"})"), 12);
    EXPECT_EQ(metric(gw, R"(michi_tokens_total{direction="out"})"), 3);
}

TEST(ResponsesApiTest, TranslatedStreamFromAGeminiUpstream) {
    fake_upstream up;
    up.set_handler([](const recorded_request&) {
        fake_response r;
        r.headers = {{"content-type", "text/event-stream"}};
        r.chunks = {
            R"(data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hal"}]}}]})"
            "\r\n\r\n",
            R"(data: {"candidates":[{"content":{"role":"model","parts":[{"text":"lo"}]},)"
            R"("finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":9,)"
            R"("candidatesTokenCount":2,"totalTokenCount":11}})"
            "\r\n\r\n"};
        return r;
    });
    config_parts parts;
    parts.providers =
        "  gem: { type: gemini, base_url: \"" + up.base_url() + "\", api_key: \"g-key\" }\n";
    parts.models = "  gem/flash: { upstream: gemini-flash, input_per_mtok: 1, "
                   "output_per_mtok: 1 }\n";
    gateway_harness gw(basic_config(up.base_url(), parts));
    const auto r = responses(gw, R"({"model":"gem/flash","input":"hi","stream":true})");
    ASSERT_EQ(r.status, 200u) << r.body;
    const auto events = events_of(r.body);
    ASSERT_FALSE(events.empty()) << r.body;
    EXPECT_EQ(events.back().first, "response.completed") << r.body;
    const json& done = events.back().second["response"];
    EXPECT_EQ(done["output"][0]["content"][0]["text"], "Hallo");
    EXPECT_EQ(done["usage"]["input_tokens"], 9);
    EXPECT_EQ(done["usage"]["output_tokens"], 2);
    EXPECT_NE(up.requests().front().target.find("gemini-flash:streamGenerateContent"),
              std::string::npos);
    EXPECT_EQ(metric(gw, R"(michi_tokens_total{direction="in"})"), 9);
}

TEST(ResponsesApiTest, WhatAChatTargetCannotCarryIsRefusedByName) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    const auto r =
        responses(gw, R"({"model":"fake/gpt-test","input":"hi","previous_response_id":"resp_1"})");
    EXPECT_EQ(r.status, 400u) << r.body;
    const json err = json::parse(r.body)["error"];
    EXPECT_EQ(err["code"], "unsupported_parameter");
    EXPECT_EQ(err["param"], "previous_response_id");
    EXPECT_EQ(err["type"], "invalid_request_error");
    const auto hosted =
        responses(gw, R"({"model":"fake/gpt-test","input":"hi","tools":[{"type":"file_search"}]})");
    EXPECT_EQ(hosted.status, 400u);
    EXPECT_EQ(json::parse(hosted.body)["error"]["param"], "tools[0]");
    EXPECT_EQ(up.request_count(), 0u);
}

TEST(ResponsesApiTest, EchoAnswersInTheResponsesShape) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    const auto plain = responses(gw, R"({"model":"echo/echo-1","input":"ping pong"})");
    ASSERT_EQ(plain.status, 200u) << plain.body;
    EXPECT_EQ(json::parse(plain.body)["output"][0]["content"][0]["text"], "ping pong");
    const auto streamed =
        responses(gw, R"({"model":"echo/echo-1","input":"ping pong","stream":true})");
    ASSERT_EQ(streamed.status, 200u);
    const auto events = events_of(streamed.body);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().second["response"]["output"][0]["content"][0]["text"], "ping pong");
}

} // namespace
} // namespace michi::test
