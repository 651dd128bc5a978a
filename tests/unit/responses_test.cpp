// The Responses API over the pivot form: requests to chat, chat answers and streams to
// Responses objects and events, against golden fixtures (tests/fixtures/responses), streams
// fed at every split point through the filter the relay uses.

#include "michi/surface/responses.hpp"

#include "michi/providers/openai.hpp"
#include "michi/surface/surface.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#ifndef MICHI_FIXTURES_DIR
#error "MICHI_FIXTURES_DIR must name tests/fixtures"
#endif

namespace michi::surface::responses {
namespace {

using json = nlohmann::json;

constexpr std::int64_t created = 1700000000;

std::string fixture(const std::string& name) {
    std::ifstream in(std::string(MICHI_FIXTURES_DIR) + "/responses/" + name, std::ios::binary);
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

json chat_of(const json& request) {
    auto r = request_to_chat(request);
    if (const auto* err = std::get_if<providers::translate_error>(&r)) {
        ADD_FAILURE() << "translate_error: " << err->message << " (" << err->param << ")";
        return nullptr;
    }
    return std::get<json>(std::move(r));
}

providers::translate_error error_of(const json& request) {
    auto r = request_to_chat(request);
    if (const auto* err = std::get_if<providers::translate_error>(&r)) {
        return *err;
    }
    ADD_FAILURE() << "expected a translate_error for " << request.dump();
    return {};
}

// The time of day an answer was made at, fixed so that it compares with a golden.
std::string fixed_time(std::string text) {
    static const std::string key = "\"created_at\":";
    const std::string fixed = std::to_string(created);
    for (auto at = text.find(key); at != std::string::npos; at = text.find(key, at)) {
        at += key.size();
        auto end = at;
        while (end < text.size() && text[end] >= '0' && text[end] <= '9') {
            ++end;
        }
        text.replace(at, end - at, fixed);
    }
    return text;
}

// An OpenAI-type upstream's SSE body for these pivot chunks (ending with [DONE] when done).
std::string upstream_sse(const std::string& chunks_file, bool done) {
    std::string out;
    for (const auto& line : lines_of(fixture(chunks_file))) {
        out += "data: " + line + "\n\n";
    }
    if (done) {
        out += "data: [DONE]\n\n";
    }
    return out;
}

std::unique_ptr<stream_filter> responses_filter(const std::string& request_body) {
    const auto request = json::parse(request_body);
    return translating_filter(api_kind::responses, providers::openai::make_pivot_stream(true),
                              "resp_test", request.value("model", ""), request_body);
}

// Feeds `sse` to a fresh filter in the given pieces; then finish() or, with broken_message,
// broken(). Returns every event it wrote.
std::string run_filter(const std::string& request_body, const std::vector<std::string>& pieces,
                       const std::string* broken_message = nullptr) {
    auto f = responses_filter(request_body);
    std::string out;
    for (const auto& p : pieces) {
        out += f->feed(p);
    }
    if (broken_message != nullptr) {
        out += f->broken(*broken_message);
    } else {
        EXPECT_TRUE(f->finished());
        out += f->finish();
    }
    return fixed_time(out);
}

// ---- Responses request -> chat request ----------------------------------------------------

TEST(ResponsesTest, RequestGoldens) {
    for (const std::string name : {"request_items", "request_options", "request_codex"}) {
        SCOPED_TRACE(name);
        EXPECT_EQ(chat_of(fixture_json(name + "/responses_in.json")),
                  fixture_json(name + "/chat_out.json"));
    }
}

TEST(ResponsesTest, RequestStringInputAndInstructions) {
    EXPECT_EQ(chat_of({{"model", "m"}, {"input", "hi"}, {"instructions", "Be brief."}}),
              json({{"model", "m"},
                    {"messages",
                     {{{"role", "system"}, {"content", "Be brief."}},
                      {{"role", "user"}, {"content", "hi"}}}}}));
    // A stream asks for its usage: response.completed reports it.
    const json streamed = chat_of({{"model", "m"}, {"input", "hi"}, {"stream", true}});
    EXPECT_EQ(streamed["stream_options"], json({{"include_usage", true}}));
    EXPECT_FALSE(chat_of({{"model", "m"}, {"input", "hi"}, {"stream", false}}).contains("stream"));
}

TEST(ResponsesTest, RequestWebSearchIsDroppedUnlessForced) {
    const json req = {{"model", "m"},
                      {"input", "hi"},
                      {"tools",
                       {{{"type", "web_search"}, {"external_web_access", false}},
                        {{"type", "web_search_preview_2025_03_11"}}}},
                      {"tool_choice", "auto"}};
    const json chat = chat_of(req);
    EXPECT_FALSE(chat.contains("tools"));
    EXPECT_FALSE(chat.contains("tool_choice")); // (chat refuses a tool_choice without tools)
    json forced = req;
    forced["tool_choice"] = {{"type", "web_search_preview"}};
    const auto err = error_of(forced);
    EXPECT_TRUE(err.unsupported);
    EXPECT_EQ(err.param, "tool_choice");
}

TEST(ResponsesTest, RequestFormats) {
    const json base = {{"model", "m"}, {"input", "hi"}};
    json text = base;
    text["text"] = {{"format", {{"type", "text"}}}};
    EXPECT_FALSE(chat_of(text).contains("response_format"));
    json object = base;
    object["text"] = {{"format", {{"type", "json_object"}}}};
    EXPECT_EQ(chat_of(object)["response_format"], json({{"type", "json_object"}}));
    json effort = base;
    effort["reasoning"] = {{"effort", "minimal"}};
    EXPECT_EQ(chat_of(effort)["reasoning_effort"], "minimal");
    json tokens = base;
    tokens["max_output_tokens"] = 64.0; // a whole float is an integer
    EXPECT_EQ(chat_of(tokens)["max_completion_tokens"], 64);
}

TEST(ResponsesTest, RequestRefusals) {
    const json base = {{"model", "m"}, {"input", "hi"}};
    for (const auto& c : fixture_json("request_refusals.json")) {
        SCOPED_TRACE(c["why"].get<std::string>());
        json req = base;
        for (const auto& [key, value] : c["patch"].items()) {
            if (value.is_null() && key != "input") {
                req.erase(key);
            } else {
                req[key] = value;
            }
        }
        const auto err = error_of(req);
        EXPECT_EQ(err.param, c["param"].get<std::string>()) << err.message;
        EXPECT_EQ(err.unsupported, c["unsupported"].get<bool>()) << err.message;
        EXPECT_FALSE(err.message.empty());
    }
}

// Whatever shape untrusted JSON takes where an object, string or array belongs, the
// translator answers with a translation or an error, never a throw.
TEST(ResponsesTest, RequestOfAnyShapeNeverThrows) {
    const std::vector<json> odd = {nullptr,
                                   1,
                                   -1,
                                   1.5,
                                   "x",
                                   true,
                                   json::array(),
                                   json::object(),
                                   json::array({nullptr}),
                                   json::array({json::object()}),
                                   json::array({1, "a"})};
    const std::vector<std::string> fields = {
        "input",      "instructions",      "tools",       "tool_choice", "text",
        "reasoning",  "max_output_tokens", "temperature", "include",     "parallel_tool_calls",
        "truncation", "top_logprobs",      "user",        "metadata",    "background"};
    const std::vector<json> items = {
        {{"type", "message"}, {"role", "user"}},
        {{"type", "function_call"}, {"call_id", "c"}, {"name", "f"}},
        {{"type", "function_call_output"}, {"call_id", "c"}},
        {{"type", "reasoning"}},
        {{"type", "item_reference"}},
        {{"role", "assistant"}, {"content", json::array({json::object()})}}};
    std::size_t translated = 0;
    for (const auto& field : fields) {
        for (const auto& v : odd) {
            json req = {{"model", "m"}, {"input", "hi"}};
            req[field] = v;
            EXPECT_NO_THROW(translated += request_to_chat(req).index() == 0);
        }
    }
    for (const auto& item : items) {
        for (const auto& key : {"content", "arguments", "output", "id", "summary", "name"}) {
            for (const auto& v : odd) {
                json it = item;
                it[key] = v;
                json req = {{"model", "m"}, {"input", json::array({it})}};
                EXPECT_NO_THROW(translated += request_to_chat(req).index() == 0);
            }
        }
    }
    for (const auto& v : odd) {
        EXPECT_NO_THROW(request_to_chat(v));
        json tool = {{"type", "namespace"}, {"name", "ns"}, {"tools", v}};
        EXPECT_NO_THROW(request_to_chat({{"model", "m"}, {"input", "hi"}, {"tools", {tool}}}));
        json choice = {{"type", "allowed_tools"}, {"mode", "auto"}, {"tools", v}};
        EXPECT_NO_THROW(
            request_to_chat({{"model", "m"}, {"input", "hi"}, {"tool_choice", choice}}));
    }
    EXPECT_GT(translated, 0u);
}

// ---- chat answer -> Response -----------------------------------------------------------------

TEST(ResponsesTest, AnswerGoldens) {
    for (const std::string name : {"answer_text", "answer_tools", "answer_reasoning_length"}) {
        SCOPED_TRACE(name);
        const json request = fixture_json(name + "/request.json");
        EXPECT_EQ(chat_to_response(fixture_json(name + "/chat_in.json"), request, request["model"],
                                   "resp_test", created),
                  fixture_json(name + "/response_out.json"));
    }
}

TEST(ResponsesTest, WholeAnswerThroughTheSurface) {
    const std::string request = fixture("answer_tools/request.json");
    const auto out = json::parse(
        fixed_time(whole_answer(api_kind::responses, fixture_json("answer_tools/chat_in.json"),
                                "michi/coder", request, "resp_test")));
    EXPECT_EQ(out, fixture_json("answer_tools/response_out.json"));
}

// JSON of every shape a field may take where an object or string is expected.
std::vector<json> odd_values() {
    return {nullptr,
            1,
            "x",
            json::array(),
            json::object(),
            json::array({nullptr}),
            json::array({json::object()})};
}

TEST(ResponsesTest, AnswerOfAnyShapeNeverThrows) {
    const auto odd = odd_values();
    for (const auto& v : odd) {
        EXPECT_NO_THROW(chat_to_response(v, v, "m", "resp_x", created));
        for (const auto& key : {"choices", "usage"}) {
            EXPECT_NO_THROW(chat_to_response({{key, v}}, {{"tools", v}}, "m", "resp_x", created));
        }
        for (const auto& key : {"message", "finish_reason"}) {
            EXPECT_NO_THROW(chat_to_response({{"choices", {{{key, v}}}}}, json::object(), "m",
                                             "resp_x", created));
        }
        for (const auto& key : {"content", "tool_calls", "refusal", "reasoning_content"}) {
            const json completion = {{"choices", {{{"message", {{key, v}}}}}}};
            const auto r = chat_to_response(completion, json::object(), "m", "resp_x", created);
            EXPECT_EQ(r["object"], "response");
            EXPECT_FALSE(r["output"].empty());
        }
    }
}

// ---- chat stream -> Responses events ---------------------------------------------------------

const std::vector<std::string> stream_fixtures = {"stream_text", "stream_tools",
                                                  "stream_reasoning_length"};

TEST(ResponsesTest, StreamGoldensAtEverySplit) {
    for (const auto& name : stream_fixtures) {
        SCOPED_TRACE(name);
        const std::string request = fixture(name + "/request.json");
        const std::string sse = upstream_sse(name + "/chat_chunks.jsonl", true);
        const std::string golden = fixture(name + "/events.sse");
        EXPECT_EQ(run_filter(request, {sse}), golden);
        for (std::size_t i = 1; i < sse.size(); ++i) {
            const auto got = run_filter(request, {sse.substr(0, i), sse.substr(i)});
            if (got != golden) {
                ADD_FAILURE() << "split at byte " << i << " gives\n" << got;
                break;
            }
        }
        std::vector<std::string> bytes;
        for (const char c : sse) {
            bytes.emplace_back(1, c);
        }
        EXPECT_EQ(run_filter(request, bytes), golden);
    }
}

TEST(ResponsesTest, StreamBrokenAfterItStartedEndsWithResponseFailed) {
    const std::string request = fixture("stream_failed/request.json");
    const std::string sse = upstream_sse("stream_failed/chat_chunks.jsonl", false);
    const std::string message = "upstream connection reset";
    const std::string golden = fixture("stream_failed/events.sse");
    for (std::size_t i = 1; i < sse.size(); ++i) {
        const auto got = run_filter(request, {sse.substr(0, i), sse.substr(i)}, &message);
        if (got != golden) {
            ADD_FAILURE() << "split at byte " << i << " gives\n" << got;
            break;
        }
    }
}

TEST(ResponsesTest, StreamUsageIsThePivots) {
    auto f = responses_filter(fixture("stream_tools/request.json"));
    (void)f->feed(upstream_sse("stream_tools/chat_chunks.jsonl", true));
    EXPECT_TRUE(f->finished());
    const auto& u = f->usage();
    EXPECT_TRUE(u.known);
    EXPECT_EQ(u.prompt_tokens, 80u);
    EXPECT_EQ(u.completion_tokens, 25u);
    EXPECT_EQ(u.cache_read_tokens, 64u);
}

TEST(ResponsesTest, StreamEventsAreNumberedInOrder) {
    const auto events =
        lines_of(run_filter(fixture("stream_tools/request.json"),
                            {upstream_sse("stream_tools/chat_chunks.jsonl", true)}));
    std::uint64_t expected = 0;
    for (const auto& line : events) {
        if (line.rfind("data: ", 0) != 0) {
            continue;
        }
        const auto j = json::parse(line.substr(6));
        EXPECT_EQ(j["sequence_number"], expected++) << line;
    }
    EXPECT_GT(expected, 10u);
}

TEST(ResponsesTest, EmptyStreamStillAnswersWithAMessage) {
    const std::string sse = "data: {\"choices\":[{\"index\":0,\"delta\":{},"
                            "\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    const auto out = run_filter(R"({"model":"m","input":"hi","stream":true})", {sse});
    const auto events = lines_of(out);
    ASSERT_FALSE(events.empty());
    const auto last = json::parse(events.back().substr(6));
    EXPECT_EQ(last["type"], "response.completed");
    ASSERT_EQ(last["response"]["output"].size(), 1u);
    EXPECT_EQ(last["response"]["output"][0]["type"], "message");
}

TEST(ResponsesTest, StreamOfOddChunksNeverThrows) {
    const auto odd = odd_values();
    for (const auto& v : odd) {
        stream_writer w("resp_x", "m", v, created);
        std::string out;
        for (const auto& key : {"choices", "usage"}) {
            EXPECT_NO_THROW(w.on_chunk({{key, v}}, out));
        }
        for (const auto& key : {"delta", "finish_reason", "index"}) {
            EXPECT_NO_THROW(w.on_chunk({{"choices", {{{key, v}}}}}, out));
        }
        for (const auto& key : {"content", "tool_calls", "refusal", "reasoning_content"}) {
            EXPECT_NO_THROW(w.on_chunk({{"choices", {{{"delta", {{key, v}}}}}}}, out));
            EXPECT_NO_THROW(w.on_chunk(
                {{"choices", {{{"delta", {{"tool_calls", {{{key, v}, {"index", v}}}}}}}}}}, out));
        }
        EXPECT_NO_THROW(w.finish(out));
        EXPECT_NO_THROW((void)w.failed_event("x"));
        EXPECT_NE(out.find("response.completed"), std::string::npos);
    }
}

TEST(ResponsesTest, BrokenPassedThroughStreamGetsAnErrorEvent) {
    const auto event = broken_event(api_kind::responses, "stream broke off");
    EXPECT_EQ(event.rfind("event: error\ndata: ", 0), 0u) << event;
    const auto j = json::parse(lines_of(event).at(1).substr(6));
    EXPECT_EQ(j["type"], "error");
    EXPECT_EQ(j["message"], "stream broke off");
}

} // namespace
} // namespace michi::surface::responses
