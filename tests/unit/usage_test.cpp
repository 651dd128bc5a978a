// Usage readers: every provider's usage fields, the raw-text reader against the DOM one,
// surprises in untrusted usage objects, and the usage objects written for clients.

#include "michi/providers/usage.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#ifndef MICHI_FIXTURES_DIR
#error "MICHI_FIXTURES_DIR must name tests/fixtures"
#endif

namespace michi::providers {
namespace {

using json = nlohmann::json;

std::string fixture(const std::string& name) {
    std::ifstream in(std::string(MICHI_FIXTURES_DIR) + "/usage/" + name, std::ios::binary);
    EXPECT_TRUE(in.good()) << "missing fixture " << name;
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

TEST(UsageTest, RawOpenAiReaderAgreesWithTheDomReader) {
    for (const std::string text : {
             fixture("openai_chat.json"),
             fixture("deepseek_chat.json"),
             std::string(R"({"prompt_tokens":9,"completion_tokens":3,"total_tokens":12})"),
             std::string(R"({"prompt_tokens":9,"prompt_tokens_details":null})"),
             std::string(R"( { "completion_tokens" : 7 ,"prompt_tokens_details":)"
                         R"({"cached_tokens":2,"cache_write_tokens":3},"prompt_tokens":10} )"),
             std::string(R"({"prompt_tokens":5,"prompt_tokens_details":{"cached_tokens":9}})"),
             std::string("{}"),
         }) {
        SCOPED_TRACE(text);
        const auto dom = read_openai_chat_usage(json::parse(text));
        const auto raw = read_openai_chat_usage(std::string_view(text));
        ASSERT_TRUE(dom);
        ASSERT_TRUE(raw);
        EXPECT_EQ(*raw, *dom);
    }
}

TEST(UsageTest, RawAnthropicReaderAgreesWithTheDomReader) {
    for (
        const std::string text : {
            fixture("anthropic_cache_write.json"),
            std::string(R"({"input_tokens":9,"output_tokens":3})"),
            std::string(
                R"( { "output_tokens" : 7 , "cache_creation" : { "ephemeral_1h_input_tokens")"
                R"(: 200, "ephemeral_5m_input_tokens":100 }, "cache_creation_input_tokens":300,)"
                R"("cache_read_input_tokens":2000,"input_tokens":100,"service_tier":"standard"} )"),
            std::string(R"({"input_tokens":null,"cache_creation":null,"output_tokens":4})"),
            // Counts the scan does not read as integers: the DOM decides, as before.
            std::string(
                R"({"input_tokens":12.0,"output_tokens":-3,"cache_read_input_tokens":"7"})"),
            std::string(R"({"input\u005ftokens":5,"cache_creation":[1],"output_tokens":1e2})"),
            std::string("{}"),
        }) {
        SCOPED_TRACE(text);
        const auto dom = read_anthropic_usage(json::parse(text));
        const auto raw = read_anthropic_usage(std::string_view(text));
        ASSERT_TRUE(dom);
        ASSERT_TRUE(raw);
        EXPECT_EQ(*raw, *dom);
    }
    EXPECT_FALSE(read_anthropic_usage(std::string_view("[1]")));
    EXPECT_FALSE(read_anthropic_usage(std::string_view(R"({"input_tokens":)")));
    EXPECT_FALSE(read_anthropic_usage(std::string_view("")));
}

TEST(UsageTest, OpenAiShapes) {
    const auto u = read_openai_chat_usage(std::string_view(fixture("openai_chat.json")));
    ASSERT_TRUE(u);
    EXPECT_EQ(u->input, 12000u);
    EXPECT_EQ(u->cache_read, 10000u);
    EXPECT_EQ(u->uncached_input(), 2000u);
    EXPECT_EQ(u->output, 800u);
    EXPECT_EQ(u->reasoning, 500u);
    // cached_tokens, when given, wins over DeepSeek's own field.
    const auto both =
        read_openai_chat_usage(json::parse(R"({"prompt_tokens":100,"prompt_cache_hit_tokens":60,
                        "prompt_tokens_details":{"cached_tokens":64}})"));
    EXPECT_EQ(both->cache_read, 64u);
    // Writes reported back by the gateway's own translated responses.
    const auto writes = read_openai_chat_usage(json::parse(R"({"prompt_tokens":100,
        "prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":40}})"));
    EXPECT_EQ(writes->cache_write_5m, 40u);
    // More cached than prompt tokens: the parts stand, the whole grows to hold them.
    const auto odd = read_openai_chat_usage(
        json::parse(R"({"prompt_tokens":5,"prompt_tokens_details":{"cached_tokens":9}})"));
    EXPECT_EQ(odd->input, 9u);
    EXPECT_EQ(odd->uncached_input(), 0u);
}

TEST(UsageTest, UntrustedUsageNeverThrows) {
    for (const char* text : {
             R"({"prompt_tokens":"12","completion_tokens":-3})",
             R"({"prompt_tokens":1e400,"completion_tokens":2.5})",
             R"({"prompt_tokens_details":[1,2],"completion_tokens_details":"x"})",
             R"({"prompt_tokens":18446744073709551615,"completion_tokens":18446744073709551615,
                 "prompt_tokens_details":{"cached_tokens":18446744073709551615}})",
             R"({"input_tokens":{"a":1},"cache_creation":[],"cache_read_input_tokens":true})",
             R"({"promptTokenCount":null,"thoughtsTokenCount":"9"})",
             R"([1,2,3])",
             R"("usage")",
         }) {
        SCOPED_TRACE(text);
        const json j = json::parse(text, nullptr, false);
        EXPECT_NO_THROW({
            (void)read_openai_chat_usage(j);
            (void)read_responses_usage(j);
            (void)read_gemini_usage(j);
            (void)read_anthropic_usage(j);
            (void)read_anthropic_usage(std::string_view(text));
            (void)read_openai_chat_usage(std::string_view(text));
            if (const auto u = read_openai_chat_usage(j)) {
                (void)openai_chat_usage_json(*u).dump();
                (void)anthropic_usage_json(*u).dump();
            }
        });
    }
    EXPECT_FALSE(read_openai_chat_usage(json::array()));
    EXPECT_FALSE(read_openai_chat_usage(std::string_view("[1]")));
    EXPECT_FALSE(read_openai_chat_usage(std::string_view(R"({"prompt_tokens":)")));
    EXPECT_FALSE(read_anthropic_usage(json("x")));
    EXPECT_FALSE(read_gemini_usage(json()));
    // Wrong types count as absent, a whole float counts.
    const auto u =
        read_openai_chat_usage(json::parse(R"({"prompt_tokens":"12","completion_tokens":4.0})"));
    EXPECT_EQ(u->input, 0u);
    EXPECT_EQ(u->output, 4u);
}

TEST(UsageTest, RawResponsesReaderAgreesWithTheDomReader) {
    for (const std::string text : {
             fixture("responses.json"),
             std::string(R"({"input_tokens":9,"output_tokens":3,"total_tokens":12})"),
             std::string(R"({"input_tokens":9,"input_tokens_details":null})"),
             std::string(R"( { "output_tokens" : 7 ,"input_tokens_details":)"
                         R"({"cached_tokens":2},"input_tokens":10,)"
                         R"("output_tokens_details":{"reasoning_tokens":4}} )"),
             std::string(R"({"input_tokens":5,"input_tokens_details":{"cached_tokens":9}})"),
             std::string("{}"),
         }) {
        SCOPED_TRACE(text);
        const auto dom = read_responses_usage(json::parse(text));
        const auto raw = read_responses_usage(std::string_view(text));
        ASSERT_TRUE(dom);
        ASSERT_TRUE(raw);
        EXPECT_EQ(*raw, *dom);
    }
    EXPECT_FALSE(read_responses_usage(std::string_view("[1]")));
    EXPECT_FALSE(read_responses_usage(std::string_view(R"({"input_tokens":)")));
    EXPECT_NO_THROW((void)read_responses_usage(std::string_view(
        R"({"input_tokens":"12","output_tokens":-3,"input_tokens_details":[1]})")));
}

TEST(UsageTest, ResponsesApi) {
    const auto u = read_responses_usage(json::parse(fixture("responses.json")));
    ASSERT_TRUE(u);
    EXPECT_EQ(*u, (token_usage{36000, 32000, 0, 0, 1500, 1024}));
}

TEST(UsageTest, AnthropicInputExcludesTheCache) {
    const auto u = read_anthropic_usage(json::parse(fixture("anthropic_cache_write.json")));
    ASSERT_TRUE(u);
    EXPECT_EQ(u->input, 50u + 20000 + 10000);
    EXPECT_EQ(u->uncached_input(), 50u);
    EXPECT_EQ(u->cache_write_5m, 20000u);
    EXPECT_EQ(u->cache_write_1h, 10000u);
    // Without the split (older API versions) every write is a 5 minute one.
    const auto old = read_anthropic_usage(json::parse(R"({"input_tokens":5,
        "cache_creation_input_tokens":300,"cache_read_input_tokens":7,"output_tokens":2})"));
    EXPECT_EQ(*old, (token_usage{312, 7, 300, 0, 2, 0}));
    // A split that does not cover the total: the rest are 5 minute writes.
    const auto part = read_anthropic_usage(json::parse(R"({"cache_creation_input_tokens":300,
        "cache_creation":{"ephemeral_1h_input_tokens":100}})"));
    EXPECT_EQ(part->cache_write_5m, 200u);
    EXPECT_EQ(part->cache_write_1h, 100u);
}

TEST(UsageTest, AnthropicStreamTally) {
    anthropic_usage_tally t;
    EXPECT_FALSE(t.known());
    // message_start: the input side and one output token so far.
    t.add(json::parse(R"({"input_tokens":10,"cache_read_input_tokens":90,
                          "cache_creation_input_tokens":0,"output_tokens":1})"));
    EXPECT_TRUE(t.known());
    EXPECT_EQ(t.tokens(), (token_usage{100, 90, 0, 0, 1, 0}));
    // message_delta: cumulative output (and, from newer APIs, the input fields again).
    t.add(json::parse(R"({"output_tokens":250})"));
    EXPECT_EQ(t.tokens(), (token_usage{100, 90, 0, 0, 250, 0}));
    t.add(json::parse(R"({"input_tokens":10,"cache_read_input_tokens":90,"output_tokens":260})"));
    EXPECT_EQ(t.tokens(), (token_usage{100, 90, 0, 0, 260, 0}));
    t.add(json("not usage"));
    EXPECT_EQ(t.tokens().output, 260u);
}

TEST(UsageTest, GeminiThoughtsAndToolPromptsCount) {
    const auto u = read_gemini_usage(json::parse(R"({"promptTokenCount":100,
        "toolUsePromptTokenCount":20,"cachedContentTokenCount":50,"candidatesTokenCount":30,
        "thoughtsTokenCount":70,"totalTokenCount":220})"));
    EXPECT_EQ(*u, (token_usage{120, 50, 0, 0, 100, 70}));
}

TEST(UsageTest, WrittenUsageObjects) {
    const token_usage u{1000, 600, 100, 50, 300, 120};
    EXPECT_EQ(openai_chat_usage_json(u), json::parse(R"({"prompt_tokens":1000,
        "completion_tokens":300,"total_tokens":1300,
        "prompt_tokens_details":{"cached_tokens":600,"cache_write_tokens":150},
        "completion_tokens_details":{"reasoning_tokens":120}})"));
    EXPECT_EQ(anthropic_usage_json(u), json::parse(R"({"input_tokens":250,"output_tokens":300,
        "cache_creation_input_tokens":150,"cache_read_input_tokens":600,
        "cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":50}})"));
    // Anthropic's own shape reads back whole, 1 h writes included (a stream's tally does).
    anthropic_usage_tally tally;
    tally.add(anthropic_usage_json(u));
    tally.add(json::parse(R"({"output_tokens":300})"));
    EXPECT_EQ(tally.tokens(), (token_usage{1000, 600, 100, 50, 300, 0}));
    // A tally made from the usage so far is the same, without the object in between.
    auto held = anthropic_usage_tally::of(token_usage{1000, 600, 100, 50, 7, 0});
    EXPECT_TRUE(held.known());
    held.add(std::string_view(R"({"output_tokens":300})"));
    EXPECT_EQ(held.tokens(), tally.tokens());
    // What the gateway writes, it reads back the same (1 h writes become 5 min ones).
    const auto back = read_openai_chat_usage(openai_chat_usage_json(u));
    EXPECT_EQ(*back, (token_usage{1000, 600, 150, 0, 300, 120}));
}

} // namespace
} // namespace michi::providers
