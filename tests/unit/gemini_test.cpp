// Gemini translator: golden fixtures (tests/fixtures/gemini) both ways, streams fed through
// the SSE parser at every split point, errors, embeddings and hostile input.

#include "michi/providers/gemini.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#ifndef MICHI_FIXTURES_DIR
#error "MICHI_FIXTURES_DIR must name tests/fixtures"
#endif

namespace {

namespace gemini = michi::providers::gemini;
using michi::providers::translate_error;
using michi::providers::upstream_request;
using michi::providers::usage_info;
using json = nlohmann::json;

constexpr std::int64_t created = 1700000000;

std::string fixture_text(const std::string& name) {
    std::ifstream in(std::string(MICHI_FIXTURES_DIR) + "/gemini/" + name, std::ios::binary);
    EXPECT_TRUE(in.good()) << "missing fixture " << name;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

json fixture(const std::string& name) { return json::parse(fixture_text(name)); }

upstream_request built(const json& request, bool stream = false,
                       const std::string& model = "gemini-2.0-flash") {
    auto r = gemini::build_chat(request, model, "key-1", stream);
    if (const auto* err = std::get_if<translate_error>(&r)) {
        ADD_FAILURE() << "translate_error: " << err->message << " (" << err->param << ")";
        return {};
    }
    return std::get<upstream_request>(r);
}

translate_error refused(const json& request) {
    auto r = gemini::build_chat(request, "gemini-2.0-flash", "k", false);
    if (const auto* err = std::get_if<translate_error>(&r)) {
        return *err;
    }
    ADD_FAILURE() << "translated, expected an error: " << std::get<upstream_request>(r).body;
    return {};
}

json body_of(const json& request) { return json::parse(built(request).body); }

json user(const json& content) { return {{"role", "user"}, {"content", content}}; }

// A vector, not a json: a braced list of one json is an array under GCC and a copy under clang.
json chat(std::vector<json> messages) { return {{"messages", json(std::move(messages))}}; }

// Feeds an SSE body through the parser in the given pieces; returns the chunks as JSON.
struct stream_result {
    std::vector<json> chunks;
    bool ok = true;
    bool finished = false;
    usage_info usage;
    std::string error;
};

stream_result run_stream(const std::vector<std::string_view>& pieces, bool include_usage) {
    auto translator =
        gemini::make_stream("chatcmpl-s", "gemini/gemini-2.0-flash", created, include_usage);
    michi::stream::sse_parser parser;
    stream_result result;
    std::vector<std::string> out;
    for (const std::string_view piece : pieces) {
        parser.feed(piece, [&](michi::stream::sse_event&& ev) {
            result.ok = result.ok && translator->on_event(ev, out);
        });
    }
    for (const std::string& chunk : out) {
        result.chunks.push_back(json::parse(chunk));
    }
    result.finished = translator->finished();
    result.usage = translator->usage();
    result.error = translator->error_message();
    return result;
}

stream_result run_stream(const std::string& body, bool include_usage = true) {
    return run_stream(std::vector<std::string_view>{body}, include_usage);
}

std::string sse(const json& event) { return "data: " + event.dump() + "\n\n"; }

TEST(GeminiTest, RequestFixtures) {
    for (const std::string name : {"request_system_multiturn", "request_images", "request_tools",
                                   "request_generation_config"}) {
        SCOPED_TRACE(name);
        const json got = body_of(fixture(name + ".openai.json"));
        const json want = fixture(name + ".gemini.json");
        EXPECT_EQ(got, want) << "got:  " << got.dump() << "\nwant: " << want.dump();
    }
}

TEST(GeminiTest, PathAndHeaders) {
    const json request = chat({user("hi")});
    const upstream_request plain = built(request);
    EXPECT_EQ(plain.path, "/v1beta/models/gemini-2.0-flash:generateContent");
    const std::vector<std::pair<std::string, std::string>> headers{
        {"x-goog-api-key", "key-1"}, {"content-type", "application/json"}};
    EXPECT_EQ(plain.headers, headers);
    EXPECT_EQ(built(request, true, "models/gemini-2.5-pro").path,
              "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse");
    auto keyless = gemini::build_chat(request, "m", "", false);
    ASSERT_TRUE(std::holds_alternative<upstream_request>(keyless));
    EXPECT_EQ(std::get<upstream_request>(keyless).headers.size(), 1u);
}

TEST(GeminiTest, ToolChoiceModes) {
    json request = chat({user("hi")});
    request["tools"] = {{{"type", "function"}, {"function", {{"name", "f"}}}}};
    for (const auto& [choice, mode] : std::vector<std::pair<std::string, std::string>>{
             {"auto", "AUTO"}, {"none", "NONE"}, {"required", "ANY"}}) {
        request["tool_choice"] = choice;
        EXPECT_EQ(body_of(request)["toolConfig"],
                  json::parse(R"({"functionCallingConfig":{"mode":")" + mode + R"("}})"));
    }
    request.erase("tools"); // a tool_choice without tools says nothing to Gemini
    EXPECT_FALSE(body_of(request).contains("toolConfig"));
}

TEST(GeminiTest, SmallerRequestShapes) {
    // A system-only request becomes the user turn (Gemini needs one).
    EXPECT_EQ(body_of(chat({{{"role", "system"}, {"content", "Say hi"}}})),
              json::parse(R"({"contents":[{"role":"user","parts":[{"text":"Say hi"}]}]})"));
    // json_object, a single stop string, legacy function_call and function messages.
    json request =
        chat({user("q"),
              {{"role", "assistant"}, {"function_call", {{"name", "f"}, {"arguments", ""}}}},
              {{"role", "function"}, {"name", "f"}, {"content", "{\"ok\":true}"}}});
    request["response_format"] = {{"type", "json_object"}};
    request["stop"] = "END";
    EXPECT_EQ(body_of(request), json::parse(R"({
        "contents":[{"role":"user","parts":[{"text":"q"}]},
                    {"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]},
                    {"role":"user","parts":[{"functionResponse":{"name":"f",
                                                                 "response":{"ok":true}}}]}],
        "generationConfig":{"stopSequences":["END"],"responseMimeType":"application/json"}})"));
}

TEST(GeminiTest, Gemini3CallsCarryTheSignatureSentinel) {
    const json request = chat(
        {user("q"),
         {{"role", "assistant"},
          {"tool_calls", {{{"id", "c"}, {"type", "function"}, {"function", {{"name", "f"}}}}}}}});
    const auto call = [&](const std::string& model) {
        return json::parse(built(request, false, model).body)["contents"][1]["parts"][0];
    };
    EXPECT_EQ(call("gemini-3-pro-preview")["thoughtSignature"], "skip_thought_signature_validator");
    EXPECT_EQ(call("models/gemini-3.1-flash")["thoughtSignature"],
              "skip_thought_signature_validator");
    EXPECT_FALSE(call("gemini-2.5-flash").contains("thoughtSignature"));
    EXPECT_FALSE(call("gemma-3-27b-it").contains("thoughtSignature"));
}

TEST(GeminiTest, RequestErrors) {
    const json bad_args = chat({user("q"),
                                {{"role", "assistant"},
                                 {"tool_calls",
                                  {{{"id", "c"},
                                    {"type", "function"},
                                    {"function", {{"name", "f"}, {"arguments", "{not json"}}}}}}}});
    EXPECT_EQ(refused(bad_args).param, "messages[1].tool_calls");
    EXPECT_EQ(refused(json::array()).param, "");
    EXPECT_EQ(refused(json::object()).param, "messages");
    EXPECT_EQ(refused(chat({})).param, "messages");
    EXPECT_EQ(refused(chat({42})).param, "messages[0]");
    EXPECT_EQ(refused(chat({{{"role", "robot"}, {"content", "x"}}})).param, "messages[0].role");
    EXPECT_EQ(refused(chat({user({{{"type", "video"}}})})).param, "messages[0].content[0]");
    EXPECT_EQ(
        refused(chat({user({{{"type", "image_url"}, {"image_url", {{"url", "ftp://x/y.png"}}}}})}))
            .param,
        "messages[0].content[0]");
    EXPECT_EQ(
        refused(
            chat({user({{{"type", "image_url"}, {"image_url", {{"url", "data:image/png,raw"}}}}})}))
            .param,
        "messages[0].content[0]");
    json request = chat({user("q")});
    request["tools"] = {{{"type", "web_search"}}};
    EXPECT_EQ(refused(request).param, "tools[0]");
    request["tools"] = {{{"type", "function"}, {"function", {{"name", "f"}}}}};
    request["tool_choice"] = "sometimes";
    EXPECT_EQ(refused(request).param, "tool_choice");
    request.erase("tool_choice");
    for (const char* field : {"temperature", "max_tokens", "n", "stop", "response_format"}) {
        json wrong = request;
        wrong[field] = std::string(field) == "stop" ? json::array({1}) : json("x");
        EXPECT_EQ(refused(wrong).param, field);
    }
    json deep = {{"type", "string"}};
    for (int i = 0; i < 100; ++i) {
        deep = {{"type", "array"}, {"items", deep}};
    }
    request["tools"][0]["function"]["parameters"] = deep;
    EXPECT_EQ(refused(request).param, "tools[0].function.parameters");
}

TEST(GeminiTest, ResponseFixtures) {
    for (const std::string name : {"response_function_call", "response_safety_block"}) {
        SCOPED_TRACE(name);
        usage_info usage;
        const json got =
            gemini::to_openai(fixture(name + ".gemini.json"), "gemini/gemini-2.5-flash",
                              "chatcmpl-test", created, usage);
        const json want = fixture(name + ".openai.json");
        EXPECT_EQ(got, want) << "got:  " << got.dump() << "\nwant: " << want.dump();
        EXPECT_TRUE(usage.known);
        EXPECT_EQ(usage.prompt_tokens, want["usage"]["prompt_tokens"].get<std::uint64_t>());
        EXPECT_EQ(usage.completion_tokens, want["usage"]["completion_tokens"].get<std::uint64_t>());
        EXPECT_EQ(usage.cache_read_tokens,
                  want["usage"]["prompt_tokens_details"]["cached_tokens"].get<std::uint64_t>());
    }
}

TEST(GeminiTest, FinishReasons) {
    const auto finish = [](const json& candidate) {
        usage_info usage;
        const json r = gemini::to_openai({{"candidates", {candidate}}}, "m", "i", 0, usage);
        EXPECT_FALSE(usage.known);
        EXPECT_FALSE(r.contains("usage"));
        return r["choices"][0];
    };
    const json text = {{"parts", {{{"text", "abc"}}}}};
    EXPECT_EQ(finish({{"content", text}, {"finishReason", "MAX_TOKENS"}})["finish_reason"],
              "length");
    EXPECT_EQ(finish({{"content", text}, {"finishReason", "STOP"}})["message"]["content"], "abc");
    for (const char* reason : {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"}) {
        const json choice = finish({{"finishReason", reason}});
        EXPECT_EQ(choice["finish_reason"], "content_filter");
        EXPECT_TRUE(choice["message"]["content"].is_null());
    }
    EXPECT_EQ(finish(json::object())["message"]["content"], "");
}

TEST(GeminiTest, StreamAtEverySplit) {
    const std::string body = fixture_text("stream_text_tool.sse");
    std::vector<json> want;
    std::istringstream lines(fixture_text("stream_text_tool.chunks.jsonl"));
    for (std::string line; std::getline(lines, line);) {
        want.push_back(json::parse(line));
    }
    const stream_result whole = run_stream(body);
    EXPECT_TRUE(whole.ok);
    EXPECT_TRUE(whole.finished);
    EXPECT_EQ(whole.chunks, want);
    EXPECT_TRUE(whole.usage.known);
    EXPECT_EQ(whole.usage.prompt_tokens, 30u);
    EXPECT_EQ(whole.usage.completion_tokens, 15u);
    const std::string_view view(body);
    for (std::size_t split = 0; split <= body.size(); ++split) {
        const stream_result two = run_stream({view.substr(0, split), view.substr(split)}, true);
        ASSERT_EQ(two.chunks, whole.chunks) << "split at " << split;
        ASSERT_TRUE(two.finished);
    }
    // Without include_usage the usage chunk is left out; usage is still known.
    const stream_result quiet = run_stream(body, false);
    EXPECT_EQ(quiet.chunks, std::vector<json>(want.begin(), want.end() - 1));
    EXPECT_TRUE(quiet.usage.known);
}

TEST(GeminiTest, StreamEdges) {
    const json text = json::parse(R"({"candidates":[{"content":{"parts":[{"text":"a"}]}}]})");
    const json stop = json::parse(R"({"candidates":[{"finishReason":"MAX_TOKENS"}]})");
    const json usage =
        json::parse(R"({"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1}})");

    stream_result r = run_stream(sse(text));
    EXPECT_TRUE(r.ok);
    EXPECT_FALSE(r.finished); // no finishReason yet
    ASSERT_EQ(r.chunks.size(), 1u);
    EXPECT_EQ(r.chunks[0]["choices"][0]["delta"],
              json::parse(R"({"role":"assistant","content":"a"})"));

    // Usage arriving after the finish event still yields the usage chunk, once, last.
    r = run_stream(sse(stop) + sse(usage) + sse(usage));
    ASSERT_EQ(r.chunks.size(), 2u);
    EXPECT_EQ(r.chunks[0]["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(r.chunks[0]["choices"][0]["delta"], json::parse(R"({"role":"assistant"})"));
    EXPECT_EQ(r.chunks[1]["usage"]["total_tokens"], 4);
    EXPECT_TRUE(r.finished);

    r = run_stream(sse({{"promptFeedback", {{"blockReason", "OTHER"}}}}) + sse(usage));
    ASSERT_EQ(r.chunks.size(), 2u);
    EXPECT_EQ(r.chunks[0]["choices"][0]["finish_reason"], "content_filter");
    EXPECT_TRUE(r.finished);

    r = run_stream(sse(text) + sse(json::parse(R"({"error":{"code":429,
        "message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}})")) +
                   sse(text));
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error, "RESOURCE_EXHAUSTED: Quota exceeded");

    r = run_stream("data: {\"candidates\":\n\n");
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(r.error.empty());
    EXPECT_TRUE(run_stream(": keepalive\n\ndata:\n\ndata: [DONE]\n\n").ok);
}

TEST(GeminiTest, Errors) {
    json e = gemini::error_to_openai(
        400, R"({"error":{"code":400,"message":"Bad key","status":"INVALID_ARGUMENT"}})");
    EXPECT_EQ(e, json::parse(R"({"error":{"message":"Bad key","type":"invalid_request_error",
                                          "code":"invalid_argument","param":null}})"));
    e = gemini::error_to_openai(
        503, R"([{"error":{"code":503,"message":"Overloaded","status":"UNAVAILABLE"}}])");
    EXPECT_EQ(e["error"]["type"], "api_error");
    EXPECT_EQ(e["error"]["code"], "unavailable");
    EXPECT_EQ(e["error"]["message"], "Overloaded");

    e = gemini::error_to_openai(502, "  \n<html>" + std::string(3000, 'x') + "</html>\n");
    EXPECT_EQ(e["error"]["message"].get<std::string>().size(), 1000u);
    EXPECT_TRUE(e["error"]["message"].get<std::string>().starts_with("<html>xx"));
    EXPECT_TRUE(e["error"]["code"].is_null());
    EXPECT_NO_THROW(gemini::error_to_openai(500, "bad \xff\xfe utf8").dump());
    EXPECT_EQ(gemini::error_to_openai(500, "")["error"]["message"], "Gemini returned HTTP 500");
}

TEST(GeminiTest, Embeddings) {
    auto r = gemini::build_embeddings(fixture("embeddings_request.openai.json"),
                                      "text-embedding-004", "key-1");
    ASSERT_TRUE(std::holds_alternative<upstream_request>(r));
    const upstream_request& req = std::get<upstream_request>(r);
    EXPECT_EQ(req.path, "/v1beta/models/text-embedding-004:batchEmbedContents");
    EXPECT_EQ(json::parse(req.body), fixture("embeddings_request.gemini.json"));

    usage_info usage;
    usage.prompt_tokens = 5; // the caller's estimate: 18 characters / 4
    const json got = gemini::embeddings_to_openai(fixture("embeddings_response.gemini.json"),
                                                  "gemini/text-embedding-004", usage);
    EXPECT_EQ(got, fixture("embeddings_response.openai.json"));
    EXPECT_TRUE(usage.known);
    EXPECT_EQ(usage.prompt_tokens, 5u);

    const auto error_of = [](const json& request) {
        auto t = gemini::build_embeddings(request, "m", "k");
        return std::holds_alternative<translate_error>(t) ? std::get<translate_error>(t)
                                                          : translate_error{"none", "none"};
    };
    EXPECT_EQ(error_of({{"input", {1, 2, 3}}}).message, "token arrays are not supported by Gemini");
    EXPECT_EQ(error_of({{"input", {{1, 2}, {3}}}}).message,
              "token arrays are not supported by Gemini");
    EXPECT_EQ(error_of({{"input", json::array()}}).param, "input");
    EXPECT_EQ(error_of({{"input", "x"}, {"dimensions", 0}}).param, "dimensions");
    EXPECT_EQ(error_of("text").param, "");
    EXPECT_EQ(json::parse(std::get<upstream_request>(
                              gemini::build_embeddings({{"input", "one"}}, "models/e", ""))
                              .body),
              json::parse(R"({"requests":[{"model":"models/e",
                                           "content":{"parts":[{"text":"one"}]}}]})"));
}

TEST(GeminiTest, HostileInputNeverThrows) {
    const std::vector<std::string> bodies = {
        "null",
        "[]",
        "42",
        R"({"candidates":"x"})",
        R"({"candidates":[1,null,[]]})",
        R"({"candidates":[{"content":{"parts":5}}]})",
        R"({"candidates":[{"content":{"parts":[7,{"text":3},{"functionCall":"f"},
            {"functionCall":{"name":9,"args":"s"}},{"text":"a","thought":"yes"}]},
            "finishReason":12,"index":-4}]})",
        R"({"usageMetadata":{"promptTokenCount":-5,"candidatesTokenCount":1.5,
            "totalTokenCount":"9","thoughtsTokenCount":18446744073709551615}})",
        R"({"promptFeedback":{"blockReason":{}}})",
        R"({"error":null})",
        R"({"error":[1]})",
        R"({"candidates":[{"index":99999999999999999999,"finishReason":"STOP"}]})",
        R"({"embeddings":[{"values":"x","statistics":5},3]})"};
    for (const std::string& body : bodies) {
        SCOPED_TRACE(body);
        const json parsed = json::parse(body);
        usage_info usage;
        EXPECT_NO_THROW(gemini::to_openai(parsed, "m", "i", 0, usage).dump());
        EXPECT_NO_THROW(gemini::embeddings_to_openai(parsed, "m", usage).dump());
        EXPECT_NO_THROW(gemini::error_to_openai(400, body).dump());
        EXPECT_NO_THROW(gemini::build_chat(parsed, "m", "k", true));
        EXPECT_NO_THROW(gemini::build_embeddings(parsed, "m", "k"));
        EXPECT_NO_THROW(run_stream("data: " + body + "\n\n"));
        EXPECT_NO_THROW(gemini::build_chat(chat({user(parsed)}), "m", "k", false));
    }
}

} // namespace
