// The real gateway in-process against fake upstreams: what the client gets and what
// the upstream sees.
#include "support/fake_upstream.hpp"
#include "support/gateway_harness.hpp"

#include "michi/core/http_wire.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <set>
#include <thread>
#include <vector>

namespace michi::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

const std::string chat_body =
    R"({"model":"fake/gpt-test","messages":[{"role":"user","content":"hello"}]})";
const std::string stream_body =
    R"({"model":"fake/gpt-test","stream":true,"messages":[{"role":"user","content":"hello"}]})";

// A chat request with the test key and a Content-Length body, as bytes for a raw socket.
std::string raw_chat_request(const std::string& body) {
    return "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
           std::string(test_secret) +
           "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
}

TEST(GatewayTest, HealthAndReadiness) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    for (const auto* path : {"/healthz", "/v1/healthz"}) {
        const auto r = gw.request(http::verb::get, path, "", {});
        EXPECT_EQ(r.status, 200u) << path;
        EXPECT_EQ(json::parse(r.body)["status"], "ok");
        EXPECT_FALSE(r.headers.at("x-request-id").empty());
    }
    EXPECT_EQ(gw.request(http::verb::get, "/readyz", "", {}).status, 200u);
}

TEST(GatewayTest, UnknownPathIs404AndWrongMethodIs405OpenAIShaped) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    const auto nf = gw.request(http::verb::get, "/v1/nope");
    EXPECT_EQ(nf.status, 404u);
    EXPECT_EQ(json::parse(nf.body)["error"]["code"], "not_found");
    const auto na = gw.request(http::verb::get, "/v1/chat/completions");
    EXPECT_EQ(na.status, 405u);
    EXPECT_EQ(na.headers.at("allow"), "POST");
    const auto err = json::parse(na.body)["error"];
    EXPECT_EQ(err["code"], "method_not_allowed");
    EXPECT_EQ(err["type"], "invalid_request_error");
    EXPECT_TRUE(err.contains("param"));
}

TEST(GatewayTest, AuthBearerAndXApiKeyAcceptedWrongKeyRefused) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    EXPECT_EQ(gw.request(http::verb::get, "/v1/models").status, 200u);
    EXPECT_EQ(gw.request(http::verb::get, "/models", "", {{"x-api-key", test_secret}}).status,
              200u);
    const auto wrong =
        gw.request(http::verb::get, "/v1/models", "", {{"authorization", "Bearer mk-dev-wrong"}});
    EXPECT_EQ(wrong.status, 401u);
    EXPECT_EQ(json::parse(wrong.body)["error"]["code"], "invalid_api_key");
    EXPECT_EQ(gw.request(http::verb::get, "/v1/models", "", {}).status, 401u);
    EXPECT_EQ(up.request_count(), 0u);
}

TEST(GatewayTest, ModelsListsConfiguredModelsAndRoutesTheKeyMayUse) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url(), {.rest = R"(routes:
  smart: { targets: [fake/gpt-test, echo/echo-1] }
)"}));
    const auto r = gw.request(http::verb::get, "/v1/models");
    ASSERT_EQ(r.status, 200u);
    const auto j = json::parse(r.body);
    EXPECT_EQ(j["object"], "list");
    std::vector<std::string> ids;
    for (const auto& m : j["data"]) {
        ids.push_back(m["id"]);
        EXPECT_EQ(m["object"], "model");
    }
    EXPECT_NE(std::find(ids.begin(), ids.end(), "fake/gpt-test"), ids.end());
    EXPECT_NE(std::find(ids.begin(), ids.end(), "smart"), ids.end());
}

TEST(GatewayTest, NonStreamRelaysUpstreamBytesUnchangedAndRewritesModel) {
    fake_upstream up;
    // Odd spacing and key order: the client must get exactly these bytes.
    const std::string upstream_body =
        R"({ "id":"x1",  "object":"chat.completion", "choices":[{"index":0,"message":{"role":"assistant","content":"hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}})";
    up.set_handler([&](const recorded_request&) { return json_response(200, upstream_body); });
    gateway_harness gw(basic_config(up.base_url()));
    const auto r = gw.chat(chat_body);
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.body, upstream_body);
    EXPECT_EQ(r.headers.at("x-michi-model"), "fake/gpt-test");
    EXPECT_EQ(r.headers.at("x-michi-attempts"), "1");
    ASSERT_EQ(up.request_count(), 1u);
    const auto seen = up.requests().front();
    EXPECT_EQ(seen.target, "/v1/chat/completions");
    EXPECT_EQ(json::parse(seen.body)["model"], "gpt-test");
    // The provider's key goes upstream, never the client's.
    EXPECT_EQ(seen.headers.at("authorization"), "Bearer sk-upstream-test");
    EXPECT_EQ(seen.body.find(test_secret), std::string::npos);
}

// The upstream request's head: Host with the port, the JSON type, Michi's agent, the
// provider's key; configured headers added or replacing those (never the body's framing);
// an upstream model name that needs JSON escapes is escaped in the spliced body.
TEST(GatewayTest, UpstreamHeadCarriesHostTypeKeyAndConfiguredHeaders) {
    fake_upstream up;
    gateway_harness gw(basic_config(
        up.base_url(),
        {.providers = "  hdr: { type: openai, base_url: \"" + up.base_url() +
                      "/v1\", api_key: \"sk-hdr\", headers: { User-Agent: custom/1, X-Org: "
                      "acme, Content-Length: \"5\" } }\n",
         .models =
             R"(  hdr/odd: { upstream: "we\"ird\\model", input_per_mtok: 1, output_per_mtok: 1 }
)"}));
    ASSERT_EQ(gw.chat(chat_body).status, 200u);
    const auto plain = up.requests().back();
    EXPECT_EQ(plain.method, "POST");
    EXPECT_EQ(plain.headers.at("host"), up.base_url().substr(std::string("http://").size()));
    EXPECT_EQ(plain.headers.at("content-type"), "application/json");
    EXPECT_TRUE(plain.headers.at("user-agent").starts_with("michi/"));
    EXPECT_EQ(plain.headers.at("content-length"), std::to_string(plain.body.size()));

    const auto r = gw.chat(R"({"model":"hdr/odd","messages":[{"role":"user","content":"x"}]})");
    ASSERT_EQ(r.status, 200u) << r.body;
    const auto seen = up.requests().back();
    EXPECT_EQ(seen.headers.at("user-agent"), "custom/1");
    EXPECT_EQ(seen.headers.at("x-org"), "acme");
    EXPECT_EQ(seen.headers.at("authorization"), "Bearer sk-hdr");
    EXPECT_EQ(seen.headers.at("content-length"), std::to_string(seen.body.size()));
    EXPECT_EQ(json::parse(seen.body)["model"], "we\"ird\\model");
}

TEST(GatewayTest, UpstreamGetsTheClientsBytesWithOnlyTheModelReplaced) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    // Spacing, key order and number spelling (0.50, 1e0) survive: no re-serialisation.
    const std::string body =
        R"({ "temperature" : 0.50, "model" : "fake/gpt-test",)"
        "\n"
        R"( "messages":[{"role":"user","content":"h\u00e9llo"}], "top_p": 1e0 })";
    ASSERT_EQ(gw.chat(body).status, 200u);
    EXPECT_EQ(up.requests().back().body,
              R"({ "temperature" : 0.50, "model" : "gpt-test",)"
              "\n"
              R"( "messages":[{"role":"user","content":"h\u00e9llo"}], "top_p": 1e0 })");

    // A stream that did not ask for usage is sent with it asked for, first.
    ASSERT_EQ(gw.chat(stream_body).status, 200u);
    EXPECT_EQ(up.requests().back().body,
              R"({"stream_options":{"include_usage":true},"model":"gpt-test","stream":true,)"
              R"("messages":[{"role":"user","content":"hello"}]})");
    // One that asked for it goes as it is; other stream options are kept beside it.
    ASSERT_EQ(gw.chat(R"({"model":"fake/gpt-test","stream":true,"stream_options":)"
                      R"({"include_usage":true},"messages":[{"role":"user","content":"x"}]})")
                  .status,
              200u);
    EXPECT_EQ(up.requests().back().body,
              R"({"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},)"
              R"("messages":[{"role":"user","content":"x"}]})");
    ASSERT_EQ(
        gw.chat(R"({"model":"fake/gpt-test","stream":true,"stream_options":)"
                R"({"include_obfuscation":false},"messages":[{"role":"user","content":"x"}]})")
            .status,
        200u);
    EXPECT_EQ(json::parse(up.requests().back().body)["stream_options"],
              json::parse(R"({"include_obfuscation":false,"include_usage":true})"));
}

TEST(GatewayTest, AmbiguousModelKeysNeverReachTheUpstreamUnrewritten) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    // Admission reads the last "model" (and decodes escaped keys); the upstream must get
    // exactly one model, the rewritten one.
    for (
        const std::string body :
        {R"({"model":"fake/other","model":"fake/gpt-test","messages":[{"role":"user","content":"x"}]})",
         R"({"\u006dodel":"fake/gpt-test","messages":[{"role":"user","content":"x"}]})",
         R"({"model":"fake/gpt-test","\u006dodel":"fake/gpt-test","messages":[{"role":"user","content":"x"}]})"}) {
        const auto r = gw.chat(body);
        ASSERT_EQ(r.status, 200u) << body << r.body;
        const std::string seen = up.requests().back().body;
        EXPECT_EQ(json::parse(seen)["model"], "gpt-test") << body;
        EXPECT_EQ(seen.find("fake/"), std::string::npos) << seen;
        EXPECT_EQ(seen.find("odel"), seen.rfind("odel")) << "one model key only: " << seen;
    }
}

TEST(GatewayTest, ClientRequestIdIsKeptAndEchoed) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    const auto r = gw.request(
        http::verb::post, "/v1/chat/completions", chat_body,
        {{"authorization", std::string("Bearer ") + test_secret}, {"x-request-id", "my-trace-42"}});
    EXPECT_EQ(r.headers.at("x-request-id"), "my-trace-42");
    const auto bad = gw.request(http::verb::post, "/v1/chat/completions", chat_body,
                                {{"authorization", std::string("Bearer ") + test_secret},
                                 {"x-request-id", "bad id with spaces"}});
    EXPECT_NE(bad.headers.at("x-request-id"), "bad id with spaces");
}

TEST(GatewayTest, EachRequestOnAKeptAliveConnectionHasItsOwnIdAndPath) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    kept_alive_client client(gw.port());
    const std::string long_id(128, 'L');
    const auto first = client.request(http::verb::post, "/v1/chat/completions", chat_body,
                                      {{"x-request-id", long_id}});
    EXPECT_EQ(first.result_int(), 200u);
    EXPECT_EQ(first["x-request-id"], long_id);
    // No id of its own: a fresh one, nothing of the one before.
    const auto second = client.request(http::verb::get, "/v1/models");
    EXPECT_EQ(second.result_int(), 200u);
    EXPECT_EQ(json::parse(second.body())["object"], "list");
    const std::string fresh(second["x-request-id"]);
    EXPECT_TRUE(fresh.starts_with("req_")) << fresh;
    EXPECT_EQ(fresh.size(), 28u);
    const auto third = client.request(http::verb::post, "/chat/completions", chat_body,
                                      {{"x-request-id", "short-id"}});
    EXPECT_EQ(third.result_int(), 200u);
    EXPECT_EQ(third["x-request-id"], "short-id");
    EXPECT_EQ(json::parse(third.body())["object"], "chat.completion");
    const auto fourth = client.request(http::verb::get, "/v1/nowhere");
    EXPECT_EQ(fourth.result_int(), 404u);
    const std::string last(fourth["x-request-id"]);
    EXPECT_TRUE(last.starts_with("req_")) << last;
    EXPECT_NE(last, fresh);
    EXPECT_EQ(up.request_count(), 2u);
}

TEST(GatewayTest, StreamRelaysEveryUpstreamByteUnchanged) {
    fake_upstream up;
    const std::vector<std::string> events = {
        R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})",
        R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"}}]})",
        R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]})",
        "[DONE]"};
    up.set_handler([&](const recorded_request&) { return sse_response(events, 5ms); });
    gateway_harness gw(basic_config(up.base_url()));
    const auto r = gw.chat(stream_body);
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(r.headers.at("content-type"), "text/event-stream");
    std::string expected;
    for (const auto& e : events) {
        expected += "data: " + e + "\n\n";
    }
    EXPECT_EQ(r.body, expected);
    EXPECT_TRUE(json::parse(up.requests().front().body)["stream"].get<bool>());
}

// A stream that waits between its events holds no read buffer meanwhile (its connection takes
// one back when bytes come, with the chunk's framing kept aside): its bytes still come through
// unchanged, and its connection, read to the end, serves the next stream.
TEST(GatewayTest, StreamsThatWaitBetweenEventsRelayEveryByteAndKeepTheirConnection) {
    fake_upstream up;
    const std::vector<std::string> events = {
        R"({"id":"c1","choices":[{"index":0,"delta":{"content":"a"}}]})",
        R"({"id":"c1","choices":[{"index":0,"delta":{"content":"b"}}]})", "[DONE]"};
    up.set_handler([&](const recorded_request&) { return sse_response(events, 30ms); });
    gateway_harness gw(basic_config(up.base_url()));
    std::string expected;
    for (const auto& e : events) {
        expected += "data: " + e + "\n\n";
    }
    for (int i = 0; i < 3; ++i) {
        const auto r = gw.chat(stream_body);
        ASSERT_EQ(r.status, 200u);
        EXPECT_EQ(r.body, expected) << i;
    }
    EXPECT_EQ(up.connections_opened(), 1u);
}

// A stream led by a byte-order mark: relayed with it, and its events still read (the usage
// chunk Michi asked for is found and dropped, as the client did not ask for it),
// whether the events come one per read or all in one.
TEST(GatewayTest, StreamLedByAByteOrderMarkIsRelayedAndRead) {
    fake_upstream up;
    const std::string bom = "\xEF\xBB\xBF";
    const std::string first =
        R"(data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Hi"}}]})"
        "\n\n";
    const std::string usage =
        R"(data: {"id":"c1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,)"
        R"("total_tokens":4}})"
        "\n\n";
    const std::string done = "data: [DONE]\n\n";
    for (const auto delay : {5ms, 0ms}) {
        up.set_handler([&](const recorded_request&) {
            fake_response r = sse_response({});
            r.chunks = {bom + first, usage, done};
            r.chunk_delay = delay;
            return r;
        });
        gateway_harness gw(basic_config(up.base_url()));
        const auto r = gw.chat(stream_body);
        ASSERT_EQ(r.status, 200u);
        EXPECT_EQ(r.body, bom + first + done) << delay.count();
    }
}

TEST(GatewayTest, LargeBodiesAndAnswersPassWholeOnOneKeptAliveConnection) {
    fake_upstream up;
    // A large answer, and a stream whose events all come at once: relayed byte for byte
    // whether they take one read or many.
    const std::string big_content(200 * 1024, 'a');
    std::vector<std::string> events;
    for (int i = 0; i < 400; ++i) {
        events.push_back(R"({"id":"c1","object":"chat.completion.chunk",)"
                         R"("choices":[{"index":0,"delta":{"content":"piece )" +
                         std::to_string(i) + R"("}}]})");
    }
    events.push_back("[DONE]");
    up.set_handler([&](const recorded_request& req) {
        if (req.body.find("\"stream\":true") != std::string::npos) {
            return sse_response(events);
        }
        auto r = default_chat_completion(req);
        auto body = json::parse(r.body);
        body["choices"][0]["message"]["content"] = big_content;
        r.body = body.dump();
        return r;
    });
    gateway_harness gw(basic_config(up.base_url()));

    // Requests of a few hundred bytes to three megabytes, one after another on one
    // connection: each reaches the upstream whole, each answer comes back whole.
    kept_alive_client client(gw.port());
    for (const std::size_t size : {std::size_t{10}, std::size_t{3} << 20, std::size_t{100},
                                   std::size_t{5000}, std::size_t{10}}) {
        const std::string content(size, 'q');
        for (const bool stream : {false, true}) {
            const auto res =
                client.request(http::verb::post, "/v1/chat/completions",
                               json{{"model", "fake/gpt-test"},
                                    {"stream", stream},
                                    {"messages", {{{"role", "user"}, {"content", content}}}}}
                                   .dump());
            ASSERT_EQ(res.result_int(), 200u) << size << " " << res.body();
            const auto seen = json::parse(up.requests().back().body);
            EXPECT_EQ(seen["messages"][0]["content"], content) << size;
            if (stream) {
                std::string expected;
                for (const auto& e : events) {
                    expected += "data: " + e + "\n\n";
                }
                EXPECT_EQ(res.body(), expected) << size;
            } else {
                EXPECT_EQ(json::parse(res.body())["choices"][0]["message"]["content"], big_content)
                    << size;
            }
            ASSERT_TRUE(res.keep_alive());
        }
    }
}

TEST(GatewayTest, Upstream4xxAnd5xxPassedThroughAsTheyAre) {
    fake_upstream up;
    const std::string e400 =
        R"({"error":{"message":"bad thing","type":"invalid_request_error","param":"messages","code":null}})";
    const std::string e500 = R"({"error":{"message":"boom","type":"server_error"}})";
    up.set_handler([&](const recorded_request& req) {
        const bool four = req.body.find("four") != std::string::npos;
        auto r = json_response(four ? 400 : 500, four ? e400 : e500);
        if (four) { // the upstream's type and Retry-After reach the client
            r.headers = {{"content-type", "application/problem+json"}, {"retry-after", "17"}};
        }
        return r;
    });
    gateway_harness gw(basic_config(up.base_url()));
    const auto r400 =
        gw.chat(R"({"model":"fake/gpt-test","messages":[{"role":"user","content":"four"}]})");
    EXPECT_EQ(r400.status, 400u);
    EXPECT_EQ(r400.body, e400);
    EXPECT_EQ(r400.headers.at("content-type"), "application/problem+json");
    EXPECT_EQ(r400.headers.at("retry-after"), "17");
    EXPECT_EQ(r400.headers.at("content-length"), std::to_string(e400.size()));
    const auto r500 = gw.chat(chat_body);
    EXPECT_EQ(r500.status, 500u);
    EXPECT_EQ(r500.body, e500);
}

TEST(GatewayTest, BadRequestsGetClearOpenAIErrors) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    const auto not_json = gw.chat("{nope");
    EXPECT_EQ(not_json.status, 400u);
    EXPECT_EQ(json::parse(not_json.body)["error"]["type"], "invalid_request_error");
    const auto no_model = gw.chat(R"({"messages":[{"role":"user","content":"x"}]})");
    EXPECT_EQ(no_model.status, 400u);
    EXPECT_EQ(json::parse(no_model.body)["error"]["param"], "model");
    const auto no_messages = gw.chat(R"({"model":"fake/gpt-test"})");
    EXPECT_EQ(no_messages.status, 400u);
    for (const std::string opts : {R"("yes")", R"([])", R"({"include_usage":"yes"})"}) {
        const auto bad_opts =
            gw.chat(R"({"model":"fake/gpt-test","stream":true,"stream_options":)" + opts +
                    R"(,"messages":[{"role":"user","content":"x"}]})");
        EXPECT_EQ(bad_opts.status, 400u) << opts;
        EXPECT_EQ(json::parse(bad_opts.body)["error"]["param"], "stream_options") << opts;
    }
    const auto unknown =
        gw.chat(R"({"model":"fake/nope","messages":[{"role":"user","content":"x"}]})");
    EXPECT_EQ(unknown.status, 404u);
    EXPECT_EQ(json::parse(unknown.body)["error"]["code"], "model_not_found");
    // Bodies the admission scan leaves to the full parse get the parse's errors.
    const auto bad_escape =
        gw.chat(R"({"model":"fake/gpt-test","messages":[{"role":"user","content":"a \q"}]})");
    EXPECT_EQ(bad_escape.status, 400u);
    EXPECT_EQ(json::parse(bad_escape.body)["error"]["message"],
              "The request body is not a JSON object.");
    const auto no_role = gw.chat(
        R"({"model":"fake/gpt-test","messages":[{"role":"user","content":"a"},{"content":"b"}]})");
    EXPECT_EQ(no_role.status, 400u);
    EXPECT_EQ(json::parse(no_role.body)["error"]["message"],
              "messages[1] must be an object with a string 'role'.");
    const auto twice =
        gw.chat(R"({"model":"fake/gpt-test","messages":[{"role":"user","role":7,"content":"a"}]})");
    EXPECT_EQ(twice.status, 400u); // the last "role" counts, as in any JSON parser
    EXPECT_EQ(up.request_count(), 0u);
}

TEST(GatewayTest, SequentialRequestsShareOnePooledUpstreamConnection) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    for (int i = 0; i < 5; ++i) {
        ASSERT_EQ(gw.chat(chat_body).status, 200u);
        ASSERT_EQ(gw.chat(stream_body).status, 200u);
    }
    EXPECT_EQ(up.request_count(), 10u);
    EXPECT_EQ(up.connections_opened(), 1u);
}

// A small answer is written to the client straight from the pooled connection's read
// buffer: answers of changing sizes, one after another on that connection, each arrive
// exactly, and the usage of each is counted.
TEST(GatewayTest, AnswersOfChangingSizesFromOnePooledConnectionArriveExactly) {
    fake_upstream up;
    int n = 0;
    auto body_of = [](int i) {
        return R"({"id":"c)" + std::to_string(i) +
               R"(","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":")" +
               std::string(static_cast<std::size_t>((i * 97) % 700), static_cast<char>('a' + i)) +
               R"("},"finish_reason":"stop"}],"usage":{"prompt_tokens":)" + std::to_string(i + 1) +
               R"(,"completion_tokens":2,"total_tokens":)" + std::to_string(i + 3) + "}}";
    };
    up.set_handler([&](const recorded_request&) { return json_response(200, body_of(n++)); });
    gateway_harness gw(basic_config(up.base_url()));
    for (int i = 0; i < 8; ++i) {
        const auto r = gw.chat(chat_body);
        ASSERT_EQ(r.status, 200u) << r.body;
        EXPECT_EQ(r.body, body_of(i)) << i;
        EXPECT_EQ(r.headers.at("content-length"), std::to_string(body_of(i).size()));
        EXPECT_EQ(r.headers.at("content-type"), "application/json");
    }
    EXPECT_EQ(up.connections_opened(), 1u);
    // Each answer's usage was read from it: 1 + 2 + ... + 8 prompt tokens, 2 completion each.
    const auto metrics = gw.request(http::verb::get, "/metrics", "", {});
    ASSERT_EQ(metrics.status, 200u) << metrics.body;
    EXPECT_NE(metrics.body.find("michi_tokens_total{direction=\"in\"} 36\n"), std::string::npos)
        << metrics.body;
    EXPECT_NE(metrics.body.find("michi_tokens_total{direction=\"out\"} 16\n"), std::string::npos);
}

// The upstream request's head and body are built in storage handed on from the requests
// before: requests of changing sizes, one after another, each go upstream exactly (the
// client's bytes with the model replaced, their own Content-Length, nothing left over).
TEST(GatewayTest, UpstreamRequestsOfChangingSizesGoOutExactly) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    for (int i = 0; i < 8; ++i) {
        const std::string text(static_cast<std::size_t>((7 - i) * 300 + i),
                               static_cast<char>('a' + i));
        const std::string sent =
            R"({"model":"fake/gpt-test","messages":[{"role":"user","content":")" + text + R"("}]})";
        ASSERT_EQ(gw.chat(sent).status, 200u) << i;
        const auto got = up.requests().back();
        EXPECT_EQ(got.body, R"({"model":"gpt-test","messages":[{"role":"user","content":")" + text +
                                R"("}]})")
            << i;
        EXPECT_EQ(got.headers.at("content-length"), std::to_string(got.body.size())) << i;
        EXPECT_EQ(got.headers.at("authorization"), "Bearer sk-upstream-test") << i;
    }
    EXPECT_EQ(up.request_count(), 8u);
}

// An upstream answer without Content-Length ends where the upstream closes: relayed whole
// (with its length), and that connection is not pooled.
TEST(GatewayTest, AnswerEndingAtTheUpstreamsCloseIsRelayedWhole) {
    fake_upstream up;
    const std::string body =
        R"({"id":"c1","object":"chat.completion","choices":[],)"
        R"("usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}})";
    up.set_handler([&](const recorded_request&) {
        auto r = json_response(200, body);
        r.body_until_close = true;
        return r;
    });
    gateway_harness gw(basic_config(up.base_url()));
    for (int i = 0; i < 2; ++i) {
        const auto r = gw.chat(chat_body);
        ASSERT_EQ(r.status, 200u) << r.body;
        EXPECT_EQ(r.body, body);
        EXPECT_EQ(r.headers.at("content-length"), std::to_string(body.size()));
    }
    EXPECT_EQ(up.connections_opened(), 2u);
}

TEST(GatewayTest, ReusedConnectionClosedByUpstreamIsRetriedOnAFreshOne) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    ASSERT_EQ(gw.chat(chat_body).status, 200u);
    // The upstream drops its idle connection behind the gateway's back.
    up.set_handler([](const recorded_request& req) {
        auto r = default_chat_completion(req);
        r.close_connection = true;
        return r;
    });
    ASSERT_EQ(gw.chat(chat_body).status, 200u);
    ASSERT_TRUE(up.wait_until([&] { return up.connections_closed() >= 1; }));
    EXPECT_EQ(gw.chat(chat_body).status, 200u);
    EXPECT_EQ(up.connections_opened(), 2u);
}

TEST(GatewayTest, ClientDisconnectMidStreamCancelsTheUpstreamRequest) {
    fake_upstream up;
    std::vector<std::string> many;
    for (int i = 0; i < 200; ++i) {
        many.push_back(R"({"choices":[{"index":0,"delta":{"content":"x"}}]})");
    }
    up.set_handler([&](const recorded_request& req) {
        return req.body.find("\"stream\":true") != std::string::npos ? sse_response(many, 20ms)
                                                                     : default_chat_completion(req);
    });
    gateway_harness gw(basic_config(up.base_url()));
    {
        raw_client client(gw.port());
        client.send(raw_chat_request(stream_body));
        const auto got = client.read_until("data: ");
        ASSERT_NE(got.find("200 OK"), std::string::npos) << got;
        client.close();
    }
    EXPECT_TRUE(up.wait_until([&] { return up.streams_aborted() == 1; }));
    // That connection is not pooled: the next request opens a new one.
    ASSERT_EQ(gw.chat(chat_body).status, 200u);
    EXPECT_EQ(up.connections_opened(), 2u);
}

// A client that asks for a stream and then reads nothing: once the gateway's write to it has
// waited idle_timeout, the client is cut off and the upstream request cancelled (a stalled
// reader cannot hold an upstream stream, or the gateway's memory, forever).
TEST(GatewayTest, AClientThatStopsReadingAStreamIsCutOffAndTheUpstreamCancelled) {
    fake_upstream up;
    // 8 MiB of events: more than the gateway's socket can hold for a client that reads none.
    const std::string event =
        R"({"choices":[{"index":0,"delta":{"content":")" + std::string(8192, 'x') + R"("}}]})";
    up.set_handler([&](const recorded_request&) {
        auto r = sse_response(std::vector<std::string>(1024, event));
        // The stream stays open after its events: the gateway's side of the upstream socket
        // can take all 8 MiB into its receive buffer, and a stream the fake had finished
        // could not be seen cancelled.
        r.end_delay = std::chrono::seconds(60);
        return r;
    });
    gateway_harness gw(basic_config(up.base_url(), {.server = "  idle_timeout: 300ms\n"}));
    raw_client client(gw.port());
    client.send(raw_chat_request(stream_body));
    EXPECT_TRUE(up.wait_until([&] { return up.streams_aborted() == 1; })) << up.streams_aborted();
    EXPECT_TRUE(client.wait_closed()); // what the gateway had sent, then the end
}

TEST(GatewayTest, StreamCutBeforeFirstEventFallsBackAfterItEndsWithErrorEvent) {
    fake_upstream up;
    up.set_handler([](const recorded_request& req) {
        fake_response r;
        r.headers = {{"content-type", "text/event-stream"}};
        if (req.body.find("early") != std::string::npos) {
            r.chunks = {"data: {\"partial"};
        } else {
            r.chunks = {"data: {\"choices\":[]}\n\n", "data: {\"more"};
        }
        r.cut_after_chunks = true;
        return r;
    });
    gateway_harness gw(basic_config(up.base_url(), {.rest = R"(routes:
  chain: { targets: [fake/gpt-test, echo/echo-1] }
)"}));
    const auto early = gw.chat(
        R"({"model":"chain","stream":true,"messages":[{"role":"user","content":"early"}]})");
    ASSERT_EQ(early.status, 200u);
    EXPECT_EQ(early.headers.at("x-michi-model"), "echo/echo-1");
    EXPECT_EQ(early.headers.at("x-michi-attempts"), "2");
    EXPECT_NE(early.body.find("early"), std::string::npos);
    EXPECT_NE(early.body.find("[DONE]"), std::string::npos);

    raw_client client(gw.port());
    client.send(raw_chat_request(
        R"({"model":"chain","stream":true,"messages":[{"role":"user","content":"late"}]})"));
    const auto late = client.read_until("\r\n0\r\n\r\n");
    EXPECT_NE(late.find("data: {\"choices\":[]}"), std::string::npos);
    EXPECT_NE(late.find("upstream_error"), std::string::npos) << late;
    EXPECT_EQ(late.find("[DONE]"), std::string::npos);
}

// An upstream event that never ends is not held without bound: past the event size cap
// (4 MiB) the stream ends with an error event, after the events before it.
TEST(GatewayTest, StreamEventPastTheSizeCapEndsTheStream) {
    fake_upstream up;
    up.set_handler([](const recorded_request&) {
        fake_response r;
        r.headers = {{"content-type", "text/event-stream"}};
        r.chunks = {"data: {\"choices\":[]}\n\n"};
        for (int i = 0; i < 5; ++i) {
            r.chunks.push_back("data: " + std::string(1024 * 1024, 'x')); // no line end
        }
        return r;
    });
    gateway_harness gw(basic_config(up.base_url()));
    raw_client client(gw.port());
    client.send(raw_chat_request(stream_body));
    const auto got = client.read_until("\r\n0\r\n\r\n");
    EXPECT_NE(got.find("data: {\"choices\":[]}"), std::string::npos);
    EXPECT_NE(got.find("upstream_error"), std::string::npos) << got.substr(0, 300);
    EXPECT_EQ(got.find("[DONE]"), std::string::npos);
}

TEST(GatewayTest, FallbackOn429And5xxButNotOn400) {
    fake_upstream bad;
    fake_upstream good;
    bad.set_handler([](const recorded_request& req) {
        return json_response(req.body.find("client-error") != std::string::npos ? 400 : 429,
                             R"({"error":{"message":"no"}})");
    });
    gateway_harness gw(basic_config(
        bad.base_url(),
        {.providers = "  good: { type: openai, base_url: \"" + good.base_url() + "/v1\" }\n",
         .rest = R"(routes:
  chain: { targets: [fake/gpt-test, good/gpt-4o-mini] }
cooldown: 0s
)"}));
    const auto r = gw.chat(R"({"model":"chain","messages":[{"role":"user","content":"x"}]})");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.headers.at("x-michi-model"), "good/gpt-4o-mini");
    EXPECT_EQ(good.request_count(), 1u);
    const auto r400 =
        gw.chat(R"({"model":"chain","messages":[{"role":"user","content":"client-error"}]})");
    EXPECT_EQ(r400.status, 400u);
    EXPECT_EQ(good.request_count(), 1u);
}

const std::string dead_provider =
    "  dead: { type: openai, base_url: \"http://127.0.0.1:1/v1\", connect_timeout: 2s }\n";

TEST(GatewayTest, EveryTargetFailingGives502ListingTheAttempts) {
    fake_upstream up;
    up.set_handler([](const recorded_request&) { return json_response(503, "{}"); });
    gateway_harness gw(basic_config(up.base_url(), {.providers = dead_provider, .rest = R"(routes:
  chain: { targets: [dead/gpt-4o-mini, fake/gpt-test] }
)"}));
    const auto r = gw.chat(R"({"model":"chain","messages":[{"role":"user","content":"x"}]})");
    // The last target's own answer is passed on when it is an HTTP response.
    EXPECT_EQ(r.status, 503u);
    up.set_handler([](const recorded_request&) {
        fake_response slow = json_response(200, "{}");
        slow.head_delay = 2s;
        return slow;
    });
    gateway_harness gw2(basic_config(up.base_url(), {.providers = dead_provider, .rest = R"(routes:
  chain: { targets: [fake/gpt-test, dead/gpt-4o-mini], attempt_timeout: 200ms }
  slow: { targets: [fake/gpt-test], attempt_timeout: 200ms }
)"}));
    const auto all = gw2.chat(R"({"model":"chain","messages":[{"role":"user","content":"x"}]})");
    EXPECT_EQ(all.status, 502u);
    const auto msg = json::parse(all.body)["error"]["message"].get<std::string>();
    EXPECT_NE(msg.find("fake/gpt-test: response timeout"), std::string::npos) << msg;
    EXPECT_NE(msg.find("dead/gpt-4o-mini: connect error"), std::string::npos) << msg;
    const auto timeout = gw2.chat(R"({"model":"slow","messages":[{"role":"user","content":"x"}]})");
    EXPECT_EQ(timeout.status, 504u);
    EXPECT_EQ(json::parse(timeout.body)["error"]["code"], "upstream_timeout");
}

TEST(GatewayTest, TlsUpstreamVerifiedAgainstTestCaAndWrongHostNameRefused) {
    const auto dir =
        std::filesystem::temp_directory_path() / ("michi-tls-" + std::to_string(::getpid()));
    const auto certs = make_test_certs(dir.string(), "localhost");
    fake_upstream up(&certs);
    auto provider = [&](const std::string& name, const std::string& host, bool with_ca) {
        return "  " + name + ": { type: openai, base_url: \"" + up.base_url(host) + "/v1\"" +
               (with_ca ? ", ca_file: \"" + certs.ca_file + "\"" : std::string()) + " }\n";
    };
    gateway_harness gw(
        basic_config(up.base_url(), {.providers = provider("tls_ok", "localhost", true) +
                                                  provider("tls_wrong_name", "127.0.0.1", true) +
                                                  provider("tls_untrusted", "localhost", false)}));
    const auto ok =
        gw.chat(R"({"model":"tls_ok/gpt-4o-mini","messages":[{"role":"user","content":"x"}]})");
    EXPECT_EQ(ok.status, 200u) << ok.body;
    const auto wrong = gw.chat(
        R"({"model":"tls_wrong_name/gpt-4o-mini","messages":[{"role":"user","content":"x"}]})");
    EXPECT_EQ(wrong.status, 502u);
    const auto untrusted = gw.chat(
        R"({"model":"tls_untrusted/gpt-4o-mini","messages":[{"role":"user","content":"x"}]})");
    EXPECT_EQ(untrusted.status, 502u);
    EXPECT_EQ(up.request_count(), 1u); // only the verified connection carried a request
    std::filesystem::remove_all(dir);
}

TEST(GatewayTest, SlowClientIsCutOff) {
    fake_upstream up;
    gateway_harness gw(
        basic_config(up.base_url(), {.server = "  idle_timeout: 300ms\n  read_timeout: 300ms\n"}));
    raw_client client(gw.port());
    client.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"); // and then nothing
    EXPECT_TRUE(client.wait_closed());
    // A body that never completes is cut off too.
    raw_client body_client(gw.port());
    body_client.send(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{");
    EXPECT_TRUE(body_client.wait_closed());
}

TEST(GatewayTest, OversizedBodyGets413AndOversizedHeaders431) {
    fake_upstream up;
    gateway_harness gw(basic_config(
        up.base_url(), {.server = "  max_body_bytes: 1024\n  max_header_bytes: 2048\n"}));
    const std::string big(4096, 'x');
    const auto r = gw.chat(R"({"model":"fake/gpt-test","messages":[{"role":"user","content":")" +
                           big + R"("}]})");
    EXPECT_EQ(r.status, 413u) << r.body;
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "request_too_large");
    const auto h = gw.request(http::verb::get, "/healthz", "", {{"x-big", std::string(4096, 'h')}});
    EXPECT_EQ(h.status, 431u);
    EXPECT_EQ(up.request_count(), 0u);
}

// Requests written back to back before any answer (HTTP/1.1 pipelining), one of them with a
// chunked body and one an empty chunked body: each is answered, in order, on the connection.
TEST(GatewayTest, PipelinedRequestsAreAnsweredInOrder) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    const auto head = [](const std::string& start) {
        return start + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + std::string(test_secret) +
               "\r\n";
    };
    const std::string first =
        R"({"model":"echo/echo-1","messages":[{"role":"user","content":"first"}]})";
    const std::string third =
        R"({"model":"echo/echo-1","messages":[{"role":"user","content":"third"}]})";
    std::string bytes = raw_chat_request(first);
    bytes += head("GET /models") + "\r\n";
    bytes += head("POST /chat/completions") + "Transfer-Encoding: chunked\r\n\r\n";
    for (std::size_t at = 0; at < third.size(); at += 16) {
        const auto piece = third.substr(at, 16);
        bytes += wire::chunk_size_line(piece.size()) + piece + "\r\n";
    }
    bytes += "0\r\n\r\n";
    bytes += head("POST /v1/embeddings") + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";

    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), gw.port()));
    stream.expires_after(10s);
    net::write(stream, net::buffer(bytes));
    beast::flat_buffer buffer;
    std::vector<http::response<http::string_body>> answers(4);
    for (auto& a : answers) {
        http::read(stream, buffer, a);
    }
    EXPECT_EQ(answers[0].result_int(), 200u);
    EXPECT_EQ(json::parse(answers[0].body())["choices"][0]["message"]["content"], "first");
    EXPECT_EQ(answers[1].result_int(), 200u);
    EXPECT_EQ(json::parse(answers[1].body())["object"], "list");
    EXPECT_EQ(answers[2].result_int(), 200u);
    EXPECT_EQ(json::parse(answers[2].body())["choices"][0]["message"]["content"], "third");
    EXPECT_EQ(answers[3].result_int(), 400u) << answers[3].body(); // an empty body
    EXPECT_EQ(json::parse(answers[3].body())["error"]["type"], "invalid_request_error");
    std::set<std::string> ids;
    for (const auto& a : answers) {
        ids.insert(std::string(a["x-request-id"]));
    }
    EXPECT_EQ(ids.size(), 4u); // each its own request
    EXPECT_EQ(up.request_count(), 0u);
}

TEST(GatewayTest, EchoProviderAnswersAndStreamsWithUsage) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    const auto r = gw.chat(
        R"({"model":"echo/echo-1","messages":[{"role":"user","content":"say this back"}]})");
    ASSERT_EQ(r.status, 200u);
    const auto j = json::parse(r.body);
    EXPECT_EQ(j["choices"][0]["message"]["content"], "say this back");
    EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 0);
    const auto s = gw.chat(
        R"({"model":"echo/echo-1","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"say this back"}]})");
    ASSERT_EQ(s.status, 200u);
    EXPECT_NE(s.body.find(R"("usage":)"), std::string::npos);
    EXPECT_TRUE(s.body.ends_with("data: [DONE]\n\n"));
}

TEST(GatewayTest, DrainFinishesInFlightRequestsAndRefusesNewOnes) {
    fake_upstream up;
    up.set_handler([](const recorded_request& req) {
        auto r = default_chat_completion(req);
        r.head_delay = 300ms;
        return r;
    });
    gateway_harness gw(basic_config(up.base_url()));
    http_reply slow;
    std::thread client([&] { slow = gw.chat(chat_body); });
    ASSERT_TRUE(up.wait_until([&] { return up.request_count() == 1; }));
    EXPECT_TRUE(gw.gw().drain(std::chrono::seconds(5)));
    client.join();
    EXPECT_EQ(slow.status, 200u);
    EXPECT_EQ(gw.gw().state().inflight.now(), 0);
    // Still listening until it stops: the probes answer, new requests get a 503.
    EXPECT_EQ(gw.request(http::verb::get, "/healthz").status, 200u);
    EXPECT_EQ(gw.request(http::verb::get, "/readyz").status, 503u);
    EXPECT_EQ(gw.chat(chat_body).status, 503u);
}

// The upstream request's head is built once per config: a reload that rotates the
// provider's key and adds a header takes effect on the next chat and embeddings requests.
TEST(GatewayTest, ReloadRotatesTheProvidersKeyAndHeadersInTheUpstreamHead) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    const std::string embeddings = R"({"model":"fake/gpt-test","input":"hello"})";
    ASSERT_EQ(gw.chat(chat_body).status, 200u);
    EXPECT_EQ(up.requests().back().headers.at("authorization"), "Bearer sk-upstream-test");
    EXPECT_EQ(up.requests().back().headers.count("x-team"), 0u);

    auto yaml = basic_config(up.base_url());
    const std::string old_key = "api_key: \"sk-upstream-test\"";
    ASSERT_NE(yaml.find(old_key), std::string::npos);
    yaml.replace(yaml.find(old_key), old_key.size(),
                 "api_key: \"sk-rotated\", headers: { X-Team: blue }");
    auto next = config::load_string(yaml);
    ASSERT_TRUE(next.cfg) << (next.errors.empty() ? "" : next.errors.front());
    std::string error;
    ASSERT_TRUE(gw.gw().reload(next.cfg, error)) << error;

    ASSERT_EQ(gw.chat(chat_body).status, 200u);
    const auto chat = up.requests().back();
    EXPECT_EQ(chat.target, "/v1/chat/completions");
    EXPECT_EQ(chat.headers.at("authorization"), "Bearer sk-rotated");
    EXPECT_EQ(chat.headers.at("x-team"), "blue");
    ASSERT_EQ(gw.request(http::verb::post, "/v1/embeddings", embeddings).status, 200u);
    const auto emb = up.requests().back();
    EXPECT_EQ(emb.target, "/v1/embeddings");
    EXPECT_EQ(emb.headers.at("authorization"), "Bearer sk-rotated");
    EXPECT_EQ(emb.headers.at("x-team"), "blue");
    EXPECT_EQ(emb.headers.at("content-length"), std::to_string(emb.body.size()));
}

TEST(GatewayTest, ReloadSwapsConfigForNewRequests) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    EXPECT_EQ(
        gw.chat(R"({"model":"fake/other","messages":[{"role":"user","content":"x"}]})").status,
        404u);
    auto next = config::load_string(basic_config(up.base_url(), {.models = "  fake/other: {}\n"}));
    ASSERT_TRUE(next.cfg) << (next.errors.empty() ? "" : next.errors.front());
    std::string error;
    ASSERT_TRUE(gw.gw().reload(next.cfg, error)) << error;
    EXPECT_EQ(
        gw.chat(R"({"model":"fake/other","messages":[{"role":"user","content":"x"}]})").status,
        200u);
}

// A connection keeps its own copy of the config and of the admin keys between requests: a
// reload and a revocation must still reach the next request on a connection already open.
TEST(GatewayTest, AReloadAndARevocationReachAConnectionAlreadyOpen) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    kept_alive_client client(gw.port());
    const std::string other =
        R"({"model":"fake/other","messages":[{"role":"user","content":"x"}]})";
    auto chat = [&](const std::string& body) {
        return client.request(http::verb::post, "/v1/chat/completions", body);
    };
    EXPECT_EQ(chat(other).result_int(), 404u);
    EXPECT_EQ(chat(chat_body).result_int(), 200u);

    auto next = config::load_string(basic_config(up.base_url(), {.models = "  fake/other: {}\n"}));
    ASSERT_TRUE(next.cfg) << (next.errors.empty() ? "" : next.errors.front());
    std::string error;
    ASSERT_TRUE(gw.gw().reload(next.cfg, error)) << error;
    EXPECT_EQ(chat(other).result_int(), 200u);
    EXPECT_EQ(up.request_count(), 2u);

    ASSERT_TRUE(gw.gw().state().key_registry().revoke("tester"));
    const auto refused = chat(chat_body);
    EXPECT_EQ(refused.result_int(), 401u);
    EXPECT_NE(refused.body().find("revoked"), std::string::npos) << refused.body();
    EXPECT_EQ(up.request_count(), 2u);
}

} // namespace
} // namespace michi::test

namespace michi::test {
namespace {

TEST(GatewayTlsFrontTest, ServesHttpsWhenServerTlsIsSet) {
    const auto dir =
        std::filesystem::temp_directory_path() / ("michi-front-" + std::to_string(::getpid()));
    const auto certs = make_test_certs(dir.string(), "localhost");
    fake_upstream up;
    gateway_harness gw(
        basic_config(up.base_url(), {.server = "  tls: { cert_file: \"" + certs.cert_file +
                                               "\", key_file: \"" + certs.key_file + "\" }\n"}));
    net::io_context ioc;
    ssl::context ctx(ssl::context::tls_client);
    ctx.load_verify_file(certs.ca_file);
    beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
    stream.set_verify_mode(ssl::verify_peer);
    stream.set_verify_callback(ssl::host_name_verification("localhost"));
    SSL_set_tlsext_host_name(stream.native_handle(), "localhost");
    beast::get_lowest_layer(stream).connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), gw.port()));
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
    stream.handshake(ssl::stream_base::client);
    http::request<http::string_body> req{http::verb::post, "/v1/chat/completions", 11};
    req.set(http::field::host, "localhost");
    req.set(http::field::authorization, std::string("Bearer ") + test_secret);
    req.body() = chat_body;
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(json::parse(res.body())["choices"][0]["message"]["content"], "hello from fake");
    // Plain HTTP to the TLS port does not get an answer.
    raw_client plain(gw.port());
    plain.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(plain.read_until("200 OK").find("200 OK"), std::string::npos);
    std::filesystem::remove_all(dir);
}

} // namespace
} // namespace michi::test
