// The provider adapters without a gateway: the upstream request each builds (head and body,
// byte for byte where the body passes through), which statuses fall back, what a passed-
// through answer's usage is, and the echo provider's answers.

#include "michi/config/config.hpp"
#include "michi/providers/adapter.hpp"
#include "michi/providers/openai.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

namespace michi::providers {
namespace {

const char* const providers_yaml = R"(
server: { listen: "127.0.0.1:0" }
store: { sqlite: ":memory:" }
providers:
  oai: { type: openai, base_url: "http://up.example:8000/v1", api_key: "sk-up", headers: { x-org: "o1" } }
  az: { type: azure, base_url: "https://az.example/", api_key: "az-key", api_version: "2024-06-01" }
  claude: { type: anthropic, base_url: "http://claude.example", api_key: "ak" }
  gem: { type: gemini, base_url: "http://gem.example", api_key: "gk" }
  echo: { type: echo }
models:
  oai/m: { upstream: "gpt-up" }
  az/m: { upstream: "deploy-1" }
  claude/m: { upstream: "claude-up" }
  gem/m: { upstream: "gemini-up" }
keys: []
)";

struct fixture {
    std::shared_ptr<const config::config> cfg;
    std::map<std::string, binding> bound;

    fixture() {
        auto loaded = config::load_string(providers_yaml);
        if (!loaded.cfg) {
            throw std::runtime_error(loaded.errors.empty() ? "bad config" : loaded.errors[0]);
        }
        cfg = loaded.cfg;
        std::shared_ptr<ssl::context> tls;
        for (const auto& [name, p] : cfg->providers) {
            auto b = bind(p, tls);
            if (!b) {
                throw std::runtime_error(b.error().message);
            }
            bound.emplace(name, std::move(b.value()));
        }
    }
    const config::model_config& model(const std::string& name) { return cfg->models.at(name); }
};

request_view chat_view(const std::string& body, const nlohmann::json* parsed, bool stream) {
    request_view v;
    v.api = api_kind::chat;
    v.raw_body = body;
    v.parsed = parsed;
    v.stream = stream;
    return v;
}

TEST(AdapterTest, RegistryHasOneAdapterPerType) {
    for (const auto t : {config::provider_type::openai, config::provider_type::azure,
                         config::provider_type::anthropic, config::provider_type::gemini,
                         config::provider_type::echo}) {
        EXPECT_EQ(adapter_for(t).type(), t);
    }
    EXPECT_TRUE(adapter_for(config::provider_type::echo).local());
    EXPECT_FALSE(adapter_for(config::provider_type::openai).local());
}

TEST(AdapterTest, OpenAiPassesTheBodyThroughWithOnlyTheModelSwapped) {
    fixture f;
    const auto& b = f.bound.at("oai");
    const std::string body =
        R"({"model":"oai/m","messages":[{"role":"user","content":"hi"}],"x":1})";
    outgoing_request out;
    ASSERT_TRUE(b.impl->build(b, f.model("oai/m"), chat_view(body, nullptr, false), out));
    EXPECT_EQ(out.body, R"({"model":"gpt-up","messages":[{"role":"user","content":"hi"}],"x":1})");
    EXPECT_TRUE(
        out.head.starts_with("POST /v1/chat/completions HTTP/1.1\r\nHost: up.example:8000\r\n"));
    EXPECT_NE(out.head.find("Authorization: Bearer sk-up\r\n"), std::string::npos);
    EXPECT_NE(out.head.find("x-org: o1\r\n"), std::string::npos);
    EXPECT_TRUE(
        out.head.ends_with("Content-Length: " + std::to_string(out.body.size()) + "\r\n\r\n"));
    EXPECT_FALSE(b.impl->needs_parsed_body(b, chat_view(body, nullptr, false)));
}

TEST(AdapterTest, OpenAiStreamsAskForUsageFirstInTheBody) {
    fixture f;
    const auto& b = f.bound.at("oai");
    const std::string body = R"({"model":"oai/m","stream":true,"messages":[]})";
    outgoing_request out;
    ASSERT_TRUE(b.impl->build(b, f.model("oai/m"), chat_view(body, nullptr, true), out));
    EXPECT_EQ(
        out.body,
        R"({"stream_options":{"include_usage":true},"model":"gpt-up","stream":true,"messages":[]})");
}

TEST(AdapterTest, OpenAiMergesStreamOptionsTheClientSetThroughTheParse) {
    fixture f;
    const auto& b = f.bound.at("oai");
    const std::string body =
        R"({"model":"oai/m","stream":true,"stream_options":{"x":1},"messages":[]})";
    const auto parsed = nlohmann::json::parse(body);
    auto view = chat_view(body, &parsed, true);
    view.has_stream_options = true;
    EXPECT_TRUE(b.impl->needs_parsed_body(b, view));
    outgoing_request out;
    ASSERT_TRUE(b.impl->build(b, f.model("oai/m"), view, out));
    const auto sent = nlohmann::json::parse(out.body);
    EXPECT_EQ(sent["model"], "gpt-up");
    EXPECT_EQ(sent["stream_options"], (nlohmann::json{{"x", 1}, {"include_usage", true}}));
}

TEST(AdapterTest, AzureNamesTheDeploymentInThePathAndSendsNoModel) {
    fixture f;
    const auto& b = f.bound.at("az");
    const std::string body = R"({"model":"az/m","messages":[{"role":"user","content":"hi"}]})";
    const auto parsed = nlohmann::json::parse(body);
    outgoing_request out;
    ASSERT_TRUE(b.impl->build(b, f.model("az/m"), chat_view(body, &parsed, false), out));
    EXPECT_TRUE(out.head.starts_with(
        "POST /openai/deployments/deploy-1/chat/completions?api-version=2024-06-01 HTTP/1.1\r\n"
        "Host: az.example\r\n"));
    EXPECT_NE(out.head.find("api-key: az-key\r\n"), std::string::npos);
    EXPECT_FALSE(nlohmann::json::parse(out.body).contains("model"));
}

TEST(AdapterTest, AnthropicTranslatesChatAndRefusesEmbeddings) {
    fixture f;
    const auto& b = f.bound.at("claude");
    const std::string body = R"({"model":"claude/m","messages":[{"role":"user","content":"hi"}]})";
    const auto parsed = nlohmann::json::parse(body);
    outgoing_request out;
    ASSERT_TRUE(b.impl->build(b, f.model("claude/m"), chat_view(body, &parsed, false), out));
    EXPECT_TRUE(out.head.starts_with("POST /v1/messages HTTP/1.1\r\n"));
    EXPECT_NE(out.head.find("x-api-key: ak\r\n"), std::string::npos);
    EXPECT_EQ(nlohmann::json::parse(out.body)["model"], "claude-up");

    const auto input = nlohmann::json::parse(R"({"model":"claude/m","input":"x"})");
    request_view emb;
    emb.api = api_kind::embeddings;
    emb.parsed = &input;
    outgoing_request none;
    const auto refused = b.impl->build(b, f.model("claude/m"), emb, none);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().status, 400u);
    EXPECT_EQ(refused.error().param, "model");
}

TEST(AdapterTest, GeminiBuildsEmbeddingsAsABatch) {
    fixture f;
    const auto& b = f.bound.at("gem");
    const auto input = nlohmann::json::parse(R"({"model":"gem/m","input":["a","b"]})");
    request_view emb;
    emb.api = api_kind::embeddings;
    emb.parsed = &input;
    outgoing_request out;
    ASSERT_TRUE(b.impl->build(b, f.model("gem/m"), emb, out));
    EXPECT_TRUE(
        out.head.starts_with("POST /v1beta/models/gemini-up:batchEmbedContents HTTP/1.1\r\n"));
    EXPECT_EQ(nlohmann::json::parse(out.body)["requests"].size(), 2u);
}

TEST(AdapterTest, RateLimitsAndServerErrorsFallBackOtherErrorsDoNot) {
    for (const auto t : {config::provider_type::openai, config::provider_type::anthropic,
                         config::provider_type::gemini}) {
        const auto& a = adapter_for(t);
        EXPECT_TRUE(a.retryable(429));
        EXPECT_TRUE(a.retryable(500));
        EXPECT_TRUE(a.retryable(529)); // Anthropic's "overloaded"
        EXPECT_FALSE(a.retryable(400));
        EXPECT_FALSE(a.retryable(401));
        EXPECT_FALSE(a.retryable(404));
    }
}

TEST(AdapterTest, PassedThroughUsageIsReadWithoutAParse) {
    const auto& a = adapter_for(config::provider_type::openai);
    usage_info u;
    EXPECT_TRUE(a.usage_of_body(
        api_kind::chat,
        R"({"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7}})", u));
    EXPECT_TRUE(u.known);
    EXPECT_EQ(u.prompt_tokens, 12u);
    EXPECT_EQ(u.completion_tokens, 7u);
    usage_info none;
    EXPECT_FALSE(
        a.usage_of_body(api_kind::chat, R"({"choices":[{"message":{"content":"abcd"}}]})", none));
    EXPECT_FALSE(none.known);
    EXPECT_EQ(a.content_chars("{\"delta\":{\"content\":\"h\xc3\xa9llo\"}}"), 5u); // UTF-8

    usage_info s;
    EXPECT_TRUE(a.inspect_event(
        api_kind::chat, R"({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}})", s));
    EXPECT_EQ(s.completion_tokens, 4u);
    EXPECT_FALSE(a.inspect_event(api_kind::chat, R"({"choices":[{"delta":{"content":"x"}}]})", s));
}

// The one-pass reading of a passed-through event gives what inspect_event and content_chars
// give apart (the usage, whether the event is the usage-only one, the content's characters),
// on usual chunks and on those made to trip a shortcut: `"usage"` written inside a content
// string (plain or escaped), duplicated or escaped keys, spacing, a second content, text
// broken off.
TEST(AdapterTest, OnePassEventReadingAgreesWithInspectAndCountApart) {
    const std::string head =
        R"("id":"chatcmpl-x","object":"chat.completion.chunk","created":1,"model":"m",)";
    std::vector<std::string> events = {
        "{" + head + R"("choices":[{"index":0,"delta":{"content":"Hello! How can I help?"}}]})",
        "{" + head + R"("choices":[],"usage":{"prompt_tokens":9,"completion_tokens":9}})",
        "{" + head + R"("choices":[{"delta":{"content":"usage"}}],"usage":{"prompt_tokens":2}})",
        "{" + head + R"("choices":[{"delta":{"content":"usage"}}]})",
        "{" + head + R"("choices":[{"delta":{"content":"say \"usage\" \\"}}]})",
        "{" + head + R"("choices":[{"delta":{"content":"\"usage\"","x":1}}],"usage":{}})",
        "{" + head + R"("choices":[],"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}})",
        "{" + head + R"("choices":[],"us\u0061ge":{"prompt_tokens":1},"usage":{}})",
        "{" + head + R"("choices" : [],"usage" : {"prompt_tokens":4,"completion_tokens":1}})",
        "{" + head + R"("choices":[ ],"usage":{"completion_tokens":5}})",
        "{" + head + R"("choices":[],"usage":null})",
        "{" + head + R"("choices":[{"delta":{"content":"a"}},{"delta":{"content":"b\u00e9"}}]})",
        "{" + head + R"("choices":[],"usage":{"prompt_tokens":3})",
        "{" + head + R"("choices":[{"delta":{"content":"unterminated)",
        "{\"content\":\"\xc3\xa9\\\"usage\\\"\",\"usage\":{\"completion_tokens\":2},\"choices\":[]"
        "}",
        R"({"usage":{"prompt_tokens":1},"choices":[]})",
        R"({"choices":[],"content":"x","usage":{"prompt_tokens":1}})",
        "[DONE]",
        "",
    };
    // Every event cut short at each length too (a hostile upstream's broken text).
    const std::size_t whole = events.size();
    for (std::size_t i = 0; i < whole; ++i) {
        for (std::size_t n = 0; n < events[i].size(); n += 7) {
            events.push_back(events[i].substr(0, n));
        }
    }
    const auto& a = adapter_for(config::provider_type::openai);
    for (const api_kind api : {api_kind::chat, api_kind::responses}) {
        for (const auto& e : events) {
            usage_info apart;
            const bool drop_apart = a.inspect_event(api, e, apart);
            const std::size_t chars_apart = a.content_chars(e);
            usage_info together;
            std::size_t chars = 3; // (added to)
            const bool drop = a.read_event(api, e, together, chars);
            EXPECT_EQ(drop, drop_apart) << e;
            EXPECT_EQ(chars, 3 + chars_apart) << e;
            EXPECT_EQ(together.known, apart.known) << e;
            EXPECT_EQ(together.prompt_tokens, apart.prompt_tokens) << e;
            EXPECT_EQ(together.completion_tokens, apart.completion_tokens) << e;
        }
    }
}

// Runs the echo stream to its end; returns its pieces.
std::vector<std::string> drain(stream::body_source& src) {
    net::io_context ioc;
    std::vector<std::string> pieces;
    net::co_spawn(
        ioc,
        [&]() -> awaitable<void> {
            while (!src.done()) {
                auto [ec, piece] = co_await src.next(nullptr);
                EXPECT_FALSE(ec);
                pieces.emplace_back(piece);
            }
        },
        net::detached);
    ioc.run();
    return pieces;
}

TEST(AdapterTest, EchoAnswersWholeWithUsage) {
    fixture f;
    const auto& echo = adapter_for(config::provider_type::echo);
    const auto body = nlohmann::json::parse(
        R"({"model":"echo/e","messages":[{"role":"user","content":"say it back"}]})");
    request_view v = chat_view("", &body, false);
    const auto model = *f.cfg->find_model("echo/e");
    const auto answer = echo.answer_locally(model, v, "chatcmpl-1");
    ASSERT_TRUE(answer);
    ASSERT_FALSE(answer->stream);
    const auto j = nlohmann::json::parse(answer->whole);
    EXPECT_EQ(j["choices"][0]["message"]["content"], "say it back");
    EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 0);
}

TEST(AdapterTest, EchoStreamsPieceByPieceAndEndsWithDone) {
    fixture f;
    const auto& echo = adapter_for(config::provider_type::echo);
    const auto body = nlohmann::json::parse(
        R"({"model":"echo/e","stream":true,"messages":[{"role":"user","content":"a b c"}]})");
    const auto model = *f.cfg->find_model("echo/e");
    auto answer = echo.answer_locally(model, chat_view("", &body, true), "chatcmpl-1");
    ASSERT_TRUE(answer && answer->stream);
    std::string all;
    for (const auto& p : drain(*answer->stream)) {
        all += p;
    }
    EXPECT_NE(all.find(R"("delta":{"content":"a"})"), std::string::npos);
    EXPECT_NE(all.find(R"("delta":{"content":" b"})"), std::string::npos);
    EXPECT_NE(all.find(R"("finish_reason":"stop")"), std::string::npos);
    EXPECT_NE(all.find(R"("usage":{)"), std::string::npos);
    EXPECT_TRUE(all.ends_with("data: [DONE]\n\n"));
}

TEST(AdapterTest, AHugeEchoStreamIsMadeInBoundedPieces) {
    fixture f;
    const auto& echo = adapter_for(config::provider_type::echo);
    std::string text;
    for (int i = 0; i < 200000; ++i) {
        text += "w ";
    }
    nlohmann::json body = {{"model", "echo/e"},
                           {"stream", true},
                           {"messages", {{{"role", "user"}, {"content", text}}}}};
    const auto model = *f.cfg->find_model("echo/e");
    auto answer = echo.answer_locally(model, chat_view("", &body, true), "chatcmpl-1");
    ASSERT_TRUE(answer && answer->stream);
    std::size_t total = 0;
    std::size_t events = 0;
    std::size_t pieces = 0;
    std::string joined;
    for (const auto& p : drain(*answer->stream)) {
        EXPECT_LE(p.size(), 64u * 1024u); // each piece small, whatever the reply's size
        total += p.size();
        ++pieces;
        for (std::size_t at = p.find("data: "); at != std::string::npos;
             at = p.find("data: ", at + 1)) {
            ++events;
        }
        joined += p;
    }
    EXPECT_GT(pieces, 10u);
    EXPECT_LE(events, 4096u + 5u); // at most max pieces of content, plus the framing events
    EXPECT_LT(total, 3 * text.size());
    // The content pieces join back to the text.
    std::string content;
    for (std::size_t at = joined.find(R"("delta":{"content":")"); at != std::string::npos;
         at = joined.find(R"("delta":{"content":")", at + 1)) {
        const auto from = at + std::string(R"("delta":{"content":")").size();
        content += joined.substr(from, joined.find('"', from) - from);
    }
    EXPECT_EQ(content, text);
}

// The content's characters as counted byte by byte (each `"content":"` found from where the
// last counted string closed; an escape one character, UTF-8 lead bytes only), against the
// count 16 bytes at a time: strings of every length around a block, with multi-byte
// characters, escapes and the closing quote at each place, in texts of several lengths.
TEST(AdapterTest, ContentCountAgreesWithTheByteByByteCount) {
    const auto reference = [](std::string_view text) {
        constexpr std::string_view key = "\"content\":\"";
        std::size_t chars = 0;
        std::size_t pos = 0;
        while ((pos = text.find(key, pos)) != std::string_view::npos) {
            pos += key.size();
            while (pos < text.size() && text[pos] != '"') {
                if (text[pos] == '\\') {
                    ++pos;
                }
                if (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) != 0x80) {
                    ++chars;
                }
                ++pos;
            }
        }
        return chars;
    };
    const std::vector<std::string> pieces = {"a",    "\xc3\xa9", "\xe2\x82\xac", "\\\"",
                                             "\\\\", "\\u00e9",  "usage",        "\"usage\""};
    const auto& a = adapter_for(config::provider_type::openai);
    for (std::size_t lead = 0; lead < 20; lead += 3) {
        for (std::size_t len = 0; len < 40; ++len) {
            for (std::size_t p = 0; p < pieces.size(); ++p) {
                std::string content;
                for (std::size_t i = 0; content.size() < len; ++i) {
                    content += i % 5 == 4 ? pieces[(p + i) % pieces.size()] : "x";
                }
                const std::string text = std::string(lead, ' ') + R"({"delta":{"content":")" +
                                         content + R"("},"more":{"content":")" + content + "\"}}";
                EXPECT_EQ(a.content_chars(text), reference(text)) << text;
                EXPECT_EQ(a.content_chars(text.substr(0, text.size() - 3 - len / 2)),
                          reference(text.substr(0, text.size() - 3 - len / 2)))
                    << text; // broken off
            }
        }
    }
}

} // namespace
} // namespace michi::providers
