#include "michi/providers/anthropic.hpp"

#include "michi/stream/sse.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#ifndef MICHI_FIXTURES_DIR
#error "MICHI_FIXTURES_DIR must name tests/fixtures"
#endif

namespace michi::providers::anthropic {
namespace {

using json = nlohmann::json;

std::string fixture(const std::string& name) {
    std::ifstream in(std::string(MICHI_FIXTURES_DIR) + "/anthropic/" + name, std::ios::binary);
    EXPECT_TRUE(in.good()) << "missing fixture " << name;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

json fixture_json(const std::string& name) { return json::parse(fixture(name)); }

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty()) {
            out.push_back(line);
        }
    }
    return out;
}

json body_of(const json& request, bool stream = false) {
    const auto r = build_chat(request, "claude-3-5-sonnet-20241022", "sk-ant-test", stream);
    if (const auto* err = std::get_if<translate_error>(&r)) {
        ADD_FAILURE() << "translate_error: " << err->message << " (" << err->param << ")";
        return nullptr;
    }
    return json::parse(std::get<upstream_request>(r).body);
}

translate_error error_of(const json& request) {
    const auto r = build_chat(request, "m", "k", false);
    if (const auto* err = std::get_if<translate_error>(&r)) {
        return *err;
    }
    ADD_FAILURE() << "expected a translate_error for " << request.dump();
    return {};
}

json user_request(json extra = json::object()) {
    json r = {{"model", "claude/x"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
    r.update(extra);
    return r;
}

// ---- OpenAI request -> Anthropic request -------------------------------------------------

TEST(AnthropicTest, RequestGoldens) {
    for (const std::string name :
         {"request_system_multiturn", "request_images", "request_tools", "request_sampling"}) {
        SCOPED_TRACE(name);
        const json in = fixture_json(name + "/openai_in.json");
        EXPECT_EQ(body_of(in, in.value("stream", false)),
                  fixture_json(name + "/anthropic_out.json"));
    }
}

TEST(AnthropicTest, RequestPathAndHeaders) {
    const auto r = std::get<upstream_request>(build_chat(user_request(), "m", "sk-1", false));
    EXPECT_EQ(r.path, "/v1/messages");
    using header = std::pair<std::string, std::string>;
    EXPECT_EQ(r.headers, (std::vector<header>{{"x-api-key", "sk-1"},
                                              {"anthropic-version", "2023-06-01"},
                                              {"content-type", "application/json"}}));
    const auto keyless = std::get<upstream_request>(build_chat(user_request(), "m", "", false));
    EXPECT_EQ(keyless.headers.front().first, "anthropic-version");
    EXPECT_FALSE(json::parse(keyless.body).contains("stream"));
}

TEST(AnthropicTest, RequestMaxTokens) {
    EXPECT_EQ(body_of(user_request())["max_tokens"], default_max_tokens);
    EXPECT_EQ(body_of(user_request({{"max_tokens", 7}}))["max_tokens"], 7);
    EXPECT_EQ(body_of(user_request({{"max_completion_tokens", 9}}))["max_tokens"], 9);
    EXPECT_EQ(
        body_of(user_request({{"max_tokens", 7}, {"max_completion_tokens", 9}}))["max_tokens"], 9);
    EXPECT_EQ(body_of(user_request({{"max_tokens", nullptr}}))["max_tokens"], default_max_tokens);
    EXPECT_EQ(error_of(user_request({{"max_tokens", 0}})).param, "max_tokens");
    EXPECT_EQ(error_of(user_request({{"max_completion_tokens", "9"}})).param,
              "max_completion_tokens");
}

TEST(AnthropicTest, RequestSamplingAndStops) {
    EXPECT_EQ(body_of(user_request({{"temperature", -1}}))["temperature"], 0.0);
    EXPECT_EQ(body_of(user_request({{"stop", {"a", "b"}}}))["stop_sequences"], json({"a", "b"}));
    EXPECT_FALSE(body_of(user_request({{"stop", json::array()}})).contains("stop_sequences"));
    EXPECT_FALSE(body_of(user_request({{"logprobs", false}})).contains("logprobs"));
    // What Anthropic cannot honour is refused by name, never dropped in silence.
    EXPECT_EQ(error_of(user_request({{"logprobs", true}})).param, "logprobs");
    EXPECT_EQ(error_of(user_request({{"seed", 7}})).param, "seed");
    EXPECT_EQ(error_of(user_request({{"presence_penalty", 0.5}})).param, "presence_penalty");
    EXPECT_EQ(error_of(user_request({{"temperature", "hot"}})).param, "temperature");
    EXPECT_EQ(error_of(user_request({{"stop", {"a", 1}}})).param, "stop");
    EXPECT_EQ(error_of(user_request({{"n", 2}})).param, "n");
}

TEST(AnthropicTest, RequestToolChoiceModes) {
    const json tools = {{{"type", "function"}, {"function", {{"name", "f"}}}}};
    const auto choice = [&](json extra) {
        extra["tools"] = tools;
        return body_of(user_request(extra)).value("tool_choice", json());
    };
    EXPECT_EQ(choice({{"tool_choice", "auto"}}), json({{"type", "auto"}}));
    EXPECT_EQ(choice({{"tool_choice", "required"}}), json({{"type", "any"}}));
    EXPECT_EQ(choice({{"tool_choice", "none"}, {"parallel_tool_calls", false}}),
              json({{"type", "none"}}));
    EXPECT_EQ(choice({{"parallel_tool_calls", false}}),
              json({{"type", "auto"}, {"disable_parallel_tool_use", true}}));
    EXPECT_EQ(choice({{"parallel_tool_calls", true}}), json());
    // Without tools, tool_choice means nothing to Anthropic and is left out.
    EXPECT_FALSE(body_of(user_request({{"tool_choice", "required"}})).contains("tool_choice"));
    EXPECT_EQ(error_of(user_request({{"tools", tools}, {"tool_choice", "sometimes"}})).param,
              "tool_choice");
    EXPECT_EQ(error_of(user_request({{"tools", {{{"type", "retrieval"}}}}})).param, "tools[0]");
}

TEST(AnthropicTest, RequestSystemCacheControlKeepsBlocks) {
    const json req = {{"messages",
                       {{{"role", "system"},
                         {"content",
                          {{{"type", "text"},
                            {"text", "long prompt"},
                            {"cache_control", {{"type", "ephemeral"}}}}}}},
                        {{"role", "user"}, {"content", "hi"}}}}};
    EXPECT_EQ(body_of(req)["system"], json::parse(R"([{"type":"text","text":"long prompt",
                               "cache_control":{"type":"ephemeral"}}])"));
}

TEST(AnthropicTest, RequestToolArgumentsEdgeCases) {
    const auto with_args = [](json args) {
        return json{{"messages",
                     {{{"role", "user"}, {"content", "x"}},
                      {{"role", "assistant"},
                       {"content", nullptr},
                       {"tool_calls",
                        {{{"id", "t1"},
                          {"type", "function"},
                          {"function", {{"name", "f"}, {"arguments", args}}}}}}}}}};
    };
    EXPECT_EQ(body_of(with_args(""))["messages"][1]["content"][0]["input"], json::object());
    const translate_error bad = error_of(with_args("{not json"));
    EXPECT_EQ(bad.param, "messages[1]");
    EXPECT_NE(bad.message.find("arguments"), std::string::npos);
    EXPECT_EQ(error_of(with_args("[1,2]")).param, "messages[1]");
}

TEST(AnthropicTest, RequestRejectsWhatAnthropicCannotTake) {
    EXPECT_EQ(error_of(json::array()).param, "");
    EXPECT_EQ(error_of({{"model", "m"}}).param, "messages");
    EXPECT_EQ(error_of({{"messages", {{{"role", "system"}, {"content", "only"}}}}}).param,
              "messages");
    EXPECT_EQ(error_of({{"messages", {{{"role", "function"}, {"content", "x"}}}}}).param,
              "messages[0].role");
    EXPECT_EQ(error_of({{"messages", {{{"role", "user"}, {"content", 5}}}}}).param,
              "messages[0].content");
    EXPECT_EQ(
        error_of({{"messages",
                   {{{"role", "user"},
                     {"content", {{{"type", "input_audio"}, {"input_audio", json::object()}}}}}}}})
            .param,
        "messages[0].content[0]");
    for (const std::string url : {"ftp://x/y.png", "data:image/png,abc", "data:"}) {
        SCOPED_TRACE(url);
        EXPECT_EQ(
            error_of({{"messages",
                       {{{"role", "user"},
                         {"content", {{{"type", "image_url"}, {"image_url", {{"url", url}}}}}}}}}})
                .param,
            "messages[0].content[0]");
    }
    EXPECT_EQ(error_of({{"messages", {{{"role", "tool"}, {"content", "x"}}}}}).param,
              "messages[0]");
}

// ---- Anthropic response -> OpenAI response -----------------------------------------------

TEST(AnthropicTest, ResponseGoldens) {
    for (const std::string name : {"response_text", "response_tools"}) {
        SCOPED_TRACE(name);
        usage_info usage;
        EXPECT_EQ(to_openai(fixture_json(name + "/anthropic_in.json"), "claude/claude-3-5-sonnet",
                            "chatcmpl-test", 1700000000, usage),
                  fixture_json(name + "/openai_out.json"));
        EXPECT_TRUE(usage.known);
    }
    usage_info usage;
    to_openai(fixture_json("response_tools/anthropic_in.json"), "m", "i", 0, usage);
    EXPECT_EQ(usage.prompt_tokens, 1120u);
    EXPECT_EQ(usage.completion_tokens, 45u);
    EXPECT_EQ(usage.cache_read_tokens, 1000u);
    EXPECT_EQ(usage.cache_write_tokens, 100u);
}

TEST(AnthropicTest, ResponseFinishReasons) {
    for (const auto& [stop, finish] :
         std::vector<std::pair<json, std::string>>{{"end_turn", "stop"},
                                                   {"stop_sequence", "stop"},
                                                   {"max_tokens", "length"},
                                                   {"tool_use", "tool_calls"},
                                                   {"refusal", "content_filter"},
                                                   {"pause_turn", "stop"},
                                                   {nullptr, "stop"}}) {
        usage_info usage;
        const json out =
            to_openai({{"content", json::array()}, {"stop_reason", stop}}, "m", "i", 0, usage);
        EXPECT_EQ(out["choices"][0]["finish_reason"], finish) << stop;
        EXPECT_TRUE(out["choices"][0]["message"]["content"].is_null());
        EXPECT_FALSE(usage.known);
    }
}

TEST(AnthropicTest, ErrorBodies) {
    EXPECT_EQ(error_to_openai(529, R"({"type":"error","error":{"type":"overloaded_error",
                                       "message":"Overloaded"}})"),
              json::parse(R"({"error":{"message":"Overloaded","type":"overloaded_error",
                                       "code":"overloaded_error","param":null}})"));
    const json text = error_to_openai(502, "  \n<html>Bad gateway</html>\r\n");
    EXPECT_EQ(text["error"]["message"], "<html>Bad gateway</html>");
    EXPECT_EQ(text["error"]["type"], "api_error");
    EXPECT_EQ(error_to_openai(429, "")["error"]["message"], "upstream error (HTTP 429)");
    EXPECT_EQ(error_to_openai(429, "")["error"]["code"], "rate_limit_error");
    EXPECT_EQ(error_to_openai(400, R"({"error":"plain"})")["error"]["message"], "plain");
    const json capped = error_to_openai(500, std::string(5000, 'x') + "\xff");
    EXPECT_EQ(capped["error"]["message"].get<std::string>().size(), 1000u);
    EXPECT_NO_THROW(error_to_openai(500, std::string(999, 'x') + "\xe2\x82\xac").dump());
}

// ---- Anthropic stream -> OpenAI chunks ---------------------------------------------------

struct stream_result {
    std::vector<std::string> chunks;
    bool ok = true;
    bool finished = false;
    std::string error;
    usage_info usage;
};

stream_result run_stream(const std::vector<std::string_view>& pieces, bool include_usage) {
    auto translator =
        make_stream("chatcmpl-s", "claude/claude-3-5-sonnet", 1700000000, include_usage);
    stream::sse_parser parser;
    stream_result r;
    for (const std::string_view piece : pieces) {
        parser.feed(piece, [&](stream::sse_event&& ev) {
            if (r.ok) {
                r.ok = translator->on_event(ev, r.chunks);
            }
        });
    }
    r.finished = translator->finished();
    r.error = translator->error_message();
    r.usage = translator->usage();
    return r;
}

// The stream fed whole and at every two-piece split gives the same chunks.
stream_result run_every_split(const std::string& text, bool include_usage) {
    const stream_result whole = run_stream({text}, include_usage);
    for (std::size_t i = 0; i <= text.size(); ++i) {
        const std::string_view all(text);
        const stream_result two = run_stream({all.substr(0, i), all.substr(i)}, include_usage);
        EXPECT_EQ(two.chunks, whole.chunks) << "split at " << i;
        EXPECT_EQ(two.ok, whole.ok) << "split at " << i;
        EXPECT_EQ(two.finished, whole.finished) << "split at " << i;
        if (::testing::Test::HasFailure()) {
            break;
        }
    }
    return whole;
}

void expect_chunks(const stream_result& r, const std::string& golden) {
    const std::vector<std::string> want = lines_of(fixture(golden));
    ASSERT_EQ(r.chunks.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(json::parse(r.chunks[i]), json::parse(want[i])) << "chunk " << i;
        // Written as the DOM writes it (keys in order, compact), though it builds none.
        EXPECT_EQ(r.chunks[i], json::parse(r.chunks[i]).dump()) << "chunk " << i;
    }
}

TEST(AnthropicTest, StreamGoldenAtEverySplit) {
    const stream_result r = run_every_split(fixture("stream_full/anthropic.sse"), true);
    expect_chunks(r, "stream_full/openai_chunks.jsonl");
    EXPECT_TRUE(r.ok);
    EXPECT_TRUE(r.finished);
    EXPECT_TRUE(r.usage.known);
    EXPECT_EQ(r.usage.prompt_tokens, 325u);
    EXPECT_EQ(r.usage.completion_tokens, 89u);
    EXPECT_EQ(r.usage.cache_read_tokens, 300u);
}

TEST(AnthropicTest, StreamErrorAtEverySplit) {
    const stream_result r = run_every_split(fixture("stream_error/anthropic.sse"), true);
    expect_chunks(r, "stream_error/openai_chunks.jsonl");
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(r.finished);
    EXPECT_EQ(r.error, "Overloaded");
    EXPECT_EQ(r.usage.prompt_tokens, 10u);
}

TEST(AnthropicTest, StreamWithoutIncludeUsageHasNoUsageChunk) {
    const stream_result r = run_stream({fixture("stream_full/anthropic.sse")}, false);
    ASSERT_FALSE(r.chunks.empty());
    EXPECT_EQ(json::parse(r.chunks.back())["choices"][0]["finish_reason"], "tool_calls");
    EXPECT_EQ(r.usage.completion_tokens, 89u);
}

TEST(AnthropicTest, StreamEventNameFromDataAndMissingDelta) {
    // No "event:" lines: the type comes from the data; message_stop without a message_delta
    // still ends with a finish chunk.
    const stream_result r = run_stream(
        {"data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n"
         "data: {\"type\":\"content_block_start\",\"index\":0,"
         "\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n"
         "data: {\"type\":\"content_block_delta\",\"index\":0,"
         "\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n"
         "data: {\"type\":\"message_stop\"}\n\n"
         "data: {\"type\":\"content_block_delta\",\"index\":0,"
         "\"delta\":{\"type\":\"text_delta\",\"text\":\"late\"}}\n\n"},
        false);
    ASSERT_EQ(r.chunks.size(), 3u);
    EXPECT_EQ(json::parse(r.chunks[1])["choices"][0]["delta"]["reasoning_content"], "hmm");
    EXPECT_EQ(json::parse(r.chunks[2])["choices"][0]["finish_reason"], "stop");
    EXPECT_TRUE(r.finished);
    EXPECT_EQ(r.usage.prompt_tokens, 3u);
}

TEST(AnthropicTest, StreamErrorWithoutJson) {
    const stream_result r = run_stream({"event: error\ndata: upstream exploded \n\n"}, false);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error, "upstream exploded");
    EXPECT_EQ(run_stream({"event: error\ndata: {}\n\n"}, false).error, "upstream stream error");
}

TEST(AnthropicTest, StreamMaxTokensStop) {
    const stream_result r =
        run_stream({"event: message_delta\ndata: {\"delta\":{\"stop_reason\":\"max_tokens\"},"
                    "\"usage\":{\"output_tokens\":5,\"input_tokens\":8}}\n\n"
                    "event: message_stop\ndata: {}\n\n"},
                   true);
    ASSERT_EQ(r.chunks.size(), 2u);
    EXPECT_EQ(json::parse(r.chunks[0])["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(json::parse(r.chunks[1])["usage"]["total_tokens"], 13);
}

// ---- /v1/messages: Anthropic in, OpenAI behind -------------------------------------------

TEST(AnthropicTest, MessagesRequestGolden) {
    const auto r = request_from_messages(fixture_json("messages_request/anthropic_in.json"));
    ASSERT_TRUE(std::holds_alternative<json>(r)) << std::get<translate_error>(r).message;
    EXPECT_EQ(std::get<json>(r), fixture_json("messages_request/openai_out.json"));
}

translate_error messages_error(const json& request) {
    const auto r = request_from_messages(request);
    if (const auto* err = std::get_if<translate_error>(&r)) {
        return *err;
    }
    ADD_FAILURE() << "expected a translate_error for " << request.dump();
    return {};
}

TEST(AnthropicTest, MessagesRequestRejects) {
    const json ok = {
        {"model", "m"}, {"max_tokens", 10}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
    const auto with = [&](json patch) {
        json r = ok;
        r.merge_patch(patch);
        return r;
    };
    EXPECT_TRUE(std::holds_alternative<json>(request_from_messages(ok)));
    EXPECT_EQ(messages_error(with({{"max_tokens", nullptr}})).param, "max_tokens");
    EXPECT_EQ(messages_error(with({{"max_tokens", -3}})).param, "max_tokens");
    EXPECT_EQ(messages_error(with({{"model", 5}})).param, "model");
    EXPECT_EQ(messages_error(with({{"messages", json::array()}})).param, "messages");
    EXPECT_EQ(messages_error(with({{"system", 5}})).param, "system");
    EXPECT_EQ(messages_error(with({{"top_k", 40}})).param, "top_k");
    // Claude Code sends a system turn inside messages: it becomes a system message.
    const auto sys = request_from_messages(with({{"messages",
                                                  {{{"role", "system"}, {"content", "be brief"}},
                                                   {{"role", "user"}, {"content", "hi"}}}}}));
    ASSERT_TRUE(std::holds_alternative<json>(sys));
    EXPECT_EQ(std::get<json>(sys)["messages"][0]["role"], "system");
    EXPECT_EQ(std::get<json>(sys)["messages"][0]["content"], "be brief");
    EXPECT_EQ(messages_error(
                  with({{"messages", {{{"role", "user"}, {"content", {{{"type", "document"}}}}}}}}))
                  .param,
              "messages[0].content[0]");
    EXPECT_EQ(messages_error(
                  with({{"tools", {{{"type", "web_search_20250305"}, {"name", "web_search"}}}}}))
                  .param,
              "tools[0]");
    EXPECT_EQ(messages_error(with({{"temperature", "warm"}})).param, "temperature");
    EXPECT_EQ(messages_error(with({{"stop_sequences", "x"}})).param, "stop_sequences");
}

TEST(AnthropicTest, MessagesRequestToolChoiceModes) {
    const json base = {{"model", "m"},
                       {"max_tokens", 10},
                       {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                       {"tools", {{{"name", "f"}, {"input_schema", {{"type", "object"}}}}}}};
    const auto mapped = [&](json choice) {
        json r = base;
        r["tool_choice"] = std::move(choice);
        return std::get<json>(request_from_messages(r)).value("tool_choice", json());
    };
    EXPECT_EQ(mapped({{"type", "auto"}}), "auto");
    EXPECT_EQ(mapped({{"type", "none"}}), "none");
    EXPECT_EQ(mapped({{"type", "tool"}, {"name", "f"}}),
              json({{"type", "function"}, {"function", {{"name", "f"}}}}));
    const json plain = std::get<json>(request_from_messages(base));
    EXPECT_FALSE(plain.contains("tool_choice"));
    EXPECT_FALSE(plain.contains("stream"));
}

TEST(AnthropicTest, MessagesResponseGolden) {
    EXPECT_EQ(response_to_messages(fixture_json("messages_response/openai_in.json"),
                                   "claude/claude-3-5-sonnet"),
              fixture_json("messages_response/anthropic_out.json"));
    for (const auto& [finish, stop] :
         std::vector<std::pair<json, std::string>>{{"stop", "end_turn"},
                                                   {"length", "max_tokens"},
                                                   {"tool_calls", "tool_use"},
                                                   {"content_filter", "refusal"},
                                                   {nullptr, "end_turn"}}) {
        const json out = response_to_messages(
            {{"choices", {{{"message", {{"content", "x"}}}, {"finish_reason", finish}}}}}, "m");
        EXPECT_EQ(out["stop_reason"], stop) << finish;
    }
}

TEST(AnthropicTest, MessagesStreamGolden) {
    messages_stream_writer writer("msg_s", "claude/claude-3-5-sonnet");
    std::string out;
    for (const std::string& line : lines_of(fixture("messages_stream/openai_chunks.jsonl"))) {
        writer.on_chunk(json::parse(line), out);
    }
    writer.finish(out);
    EXPECT_EQ(out, fixture("messages_stream/anthropic.sse"));
    // Each event parses back, and names the same type as its data.
    stream::sse_parser parser;
    std::size_t events = 0;
    parser.feed(out, [&](stream::sse_event&& ev) {
        ++events;
        EXPECT_EQ(json::parse(ev.data)["type"], ev.event);
    });
    EXPECT_EQ(events, 14u);
    EXPECT_TRUE(parser.at_boundary());
    std::string again;
    writer.finish(again);
    EXPECT_TRUE(again.empty());
}

TEST(AnthropicTest, MessagesStreamWithoutChunks) {
    messages_stream_writer writer("msg_e", "m");
    std::string out;
    writer.finish(out);
    EXPECT_EQ(out.find("event: message_start\n"), 0u);
    EXPECT_NE(out.find("\"stop_reason\":\"end_turn\""), std::string::npos);
    EXPECT_TRUE(out.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
}

TEST(AnthropicTest, MessagesErrorEvent) {
    EXPECT_EQ(messages_stream_writer::error_event("boom"),
              "event: error\ndata: {\"error\":{\"message\":\"boom\",\"type\":\"api_error\"},"
              "\"type\":\"error\"}\n\n");
    EXPECT_NE(messages_stream_writer::error_event("bad \xff utf8").find("\xef\xbf\xbd"),
              std::string::npos);
}

// An Anthropic stream through both directions comes back as the same content.
TEST(AnthropicTest, StreamRoundTrip) {
    const stream_result r = run_stream({fixture("stream_full/anthropic.sse")}, true);
    messages_stream_writer writer("msg_r", "m");
    std::string out;
    for (const std::string& chunk : r.chunks) {
        writer.on_chunk(json::parse(chunk), out);
    }
    writer.finish(out);
    std::string text;
    std::string args;
    stream::sse_parser parser;
    parser.feed(out, [&](stream::sse_event&& ev) {
        const json d = json::parse(ev.data);
        if (ev.event == "content_block_delta") {
            text += d["delta"].value("text", "");
            args += d["delta"].value("partial_json", "");
        } else if (ev.event == "message_delta") {
            EXPECT_EQ(d["delta"]["stop_reason"], "tool_use");
            EXPECT_EQ(d["usage"]["output_tokens"], 89);
            EXPECT_EQ(d["usage"]["input_tokens"], 25);
            EXPECT_EQ(d["usage"]["cache_read_input_tokens"], 300);
        }
    });
    EXPECT_EQ(text, "Let me check.");
    EXPECT_EQ(args, "{\"city\": \"Paris\"}{}");
}

// ---- Hostile input ----------------------------------------------------------------------

TEST(AnthropicTest, HostileInputNeverThrows) {
    const std::vector<json> inputs = {
        nullptr,
        1,
        "s",
        json::array(),
        json::object(),
        json::parse(R"({"messages":[null,1,{"role":5},
                                    {"role":"user","content":[null,{"type":5}]}]})"),
        json::parse(R"({"messages":[{"role":"assistant","tool_calls":[null,{"id":"a"}]}]})"),
        json::parse(R"({"messages":[{"role":"assistant","tool_calls":{"x":1}}],"tools":5})"),
        json::parse(R"({"messages":[{"role":"user","content":"x"}],"tools":[null],
                        "tool_choice":{"type":"function"},"max_tokens":1e300})"),
        json::parse(R"({"content":[null,{"type":"tool_use","input":[1]}],"usage":{"input_tokens":-1,
                        "output_tokens":"x"},"choices":[{"message":{"tool_calls":[null]}}]})"),
        json::parse(R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":[
                        {"type":"image"},{"type":"tool_result","content":5}]}],
                        "tools":[{"name":"f","input_schema":{}}],"tool_choice":"auto"})"),
        json::parse(R"({"choices":[{"delta":{"tool_calls":[{"index":-1},{"function":5}]},
                        "finish_reason":5}],"usage":{"prompt_tokens":1.5}})"),
    };
    for (const json& in : inputs) {
        SCOPED_TRACE(in.dump());
        usage_info usage;
        EXPECT_NO_THROW(build_chat(in, "m", "k", true));
        EXPECT_NO_THROW(to_openai(in, "m", "i", 0, usage).dump());
        EXPECT_NO_THROW(request_from_messages(in));
        EXPECT_NO_THROW(response_to_messages(in, "m").dump());
        messages_stream_writer writer("msg", "m");
        std::string out;
        EXPECT_NO_THROW(writer.on_chunk(in, out));
        EXPECT_NO_THROW(writer.finish(out));
        auto translator = make_stream("i", "m", 0, true);
        std::vector<std::string> chunks;
        for (const char* type : {"message_start", "content_block_start", "content_block_delta",
                                 "content_block_stop", "message_delta", "message_stop"}) {
            EXPECT_NO_THROW(translator->on_event({type, in.dump(), {}, std::nullopt}, chunks));
        }
    }
}

} // namespace
} // namespace michi::providers::anthropic
