#include "michi/cache/cached_answer.hpp"
#include "michi/cache/memory_cache.hpp"
#include "michi/cache/request_key.hpp"
#include "michi/cache/response_cache.hpp"
#include "michi/core/json_scan.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace michi::cache {
namespace {

std::shared_ptr<const cached_answer> answer(std::size_t body_bytes, std::int64_t expires_ms) {
    auto a = std::make_shared<cached_answer>();
    a->body.assign(body_bytes, 'x');
    a->expires_ms = expires_ms;
    return a;
}

TEST(MemoryCacheTest, KeepsWithinItsByteBoundDroppingTheLeastRecentlyUsed) {
    memory_cache c(64 * 1024); // one shard
    const std::int64_t later = 1'000'000;
    c.put("a", answer(10000, later));
    c.put("b", answer(10000, later));
    c.put("c", answer(10000, later));
    ASSERT_TRUE(c.get("a", 0)); // a is now the most recently used
    for (int i = 0; i < 100; ++i) {
        c.put("k" + std::to_string(i), answer(10000, later));
        EXPECT_LE(c.stats().bytes, 64u * 1024);
    }
    EXPECT_FALSE(c.get("b", 0));
    EXPECT_LT(c.stats().entries, 7u);
    EXPECT_GT(c.stats().evictions, 90u);

    memory_cache fresh(64 * 1024);
    fresh.put("a", answer(10000, later));
    fresh.put("b", answer(10000, later));
    fresh.put("c", answer(10000, later));
    ASSERT_TRUE(fresh.get("a", 0));
    for (int i = 0; i < 4; ++i) { // room for 6: b goes first, then c; a stays
        fresh.put("n" + std::to_string(i), answer(10000, later));
    }
    EXPECT_TRUE(fresh.get("a", 0));
    EXPECT_FALSE(fresh.get("b", 0));
}

TEST(MemoryCacheTest, AnAnswerExpiresAndOneTooLargeIsNotKept) {
    memory_cache c(64 * 1024);
    c.put("a", answer(10, 1000));
    EXPECT_TRUE(c.get("a", 999));
    EXPECT_FALSE(c.get("a", 1000));
    EXPECT_EQ(c.stats().entries, 0u);
    c.put("big", answer(c.max_entry_bytes(), 1000));
    EXPECT_FALSE(c.get("big", 0));
    EXPECT_EQ(c.stats().bytes, 0u);
}

TEST(MemoryCacheTest, ALargeBoundIsShardedAndStillRespected) {
    memory_cache c(64u << 20);
    EXPECT_LT(c.max_entry_bytes(), 64u << 20);
    for (int i = 0; i < 3000; ++i) {
        c.put("k" + std::to_string(i), answer(64 * 1024, 1'000'000));
    }
    EXPECT_LE(c.stats().bytes, 64u << 20);
    EXPECT_GT(c.stats().evictions, 0u);
}

TEST(CachedAnswerTest, EncodesAndDecodesEveryField) {
    cached_answer a;
    a.stream = true;
    a.status = 200;
    a.content_type = "text/event-stream";
    a.model = "openai/gpt-4o";
    a.body = "data: {\"x\":1}\n\ndata: [DONE]\n\n";
    a.cost_nano = 12345;
    a.expires_ms = 1700000000000;
    const auto back = decode(encode(a));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->stream, a.stream);
    EXPECT_EQ(back->status, a.status);
    EXPECT_EQ(back->content_type, a.content_type);
    EXPECT_EQ(back->model, a.model);
    EXPECT_EQ(back->body, a.body);
    EXPECT_EQ(back->cost_nano, a.cost_nano);
    EXPECT_EQ(back->expires_ms, a.expires_ms);
    EXPECT_FALSE(decode(""));
    EXPECT_FALSE(decode("MC1 1 200"));
    EXPECT_FALSE(decode(encode(a).substr(0, 40)));
    EXPECT_FALSE(decode("XX" + encode(a)));
}

std::string digest(std::string_view body, std::string_view model = "gpt",
                   std::string_view scope = "") {
    const auto k = key_of(api_kind::chat, model, body, scope, "");
    return k ? k->digest : "none";
}

TEST(RequestKeyTest, TheSameRequestWhateverItsSpacingAndOrderHasOneKey) {
    const std::string a =
        R"({"model":"gpt","messages":[{"role":"user","content":"hi"}],"max_tokens":5})";
    const std::string b = R"({ "max_tokens": 5, "messages": [ {"content": "hi", "role": "user"} ],
                               "model": "gpt" })";
    EXPECT_EQ(digest(a), digest(b));
    EXPECT_EQ(digest(a).size(), 32u);
    // Hints that cannot change the answer do not count; the model is the resolved one.
    EXPECT_EQ(digest(a), digest(R"({"model":"other-name","user":"u1","metadata":{"a":1},
        "messages":[{"role":"user","content":"hi"}],"max_tokens":5})"));
    const auto parsed = nlohmann::json::parse(b);
    EXPECT_EQ(parsed_key_of(api_kind::chat, "gpt", parsed, "", "")->digest, digest(a));
}

TEST(RequestKeyTest, AnythingThatShapesTheAnswerMakesAnotherKey) {
    const std::string a = R"({"messages":[{"role":"user","content":"hi"}]})";
    EXPECT_NE(digest(a), digest(R"({"messages":[{"role":"user","content":"ho"}]})"));
    EXPECT_NE(digest(a), digest(R"({"messages":[{"role":"user","content":"hi"}],"top_p":0.5})"));
    EXPECT_NE(digest(a), digest(R"({"messages":[{"role":"user","content":"hi"}],"tools":[]})"));
    EXPECT_NE(digest(a), digest(R"({"messages":[{"role":"user","content":"hi"}],"stream":true})"));
    EXPECT_NE(digest(a), digest(a, "other-route"));
    EXPECT_NE(digest(a), digest(a, "gpt", "key-1"));
    EXPECT_NE(key_of(api_kind::chat, "gpt", a, "", "")->digest,
              key_of(api_kind::messages, "gpt", a, "", "")->digest);
    EXPECT_NE(key_of(api_kind::messages, "gpt", a, "", "2023-06-01\n")->digest,
              key_of(api_kind::messages, "gpt", a, "", "2023-06-01\nbeta-x")->digest);
    EXPECT_NE(raw_key_of(api_kind::messages, "gpt", a, "", "", false).digest,
              raw_key_of(api_kind::messages, "gpt", a + " ", "", "", false).digest);
}

TEST(RequestKeyTest, SaysWhenTheRequestSamplesAndRefusesWhatItCannotKey) {
    EXPECT_FALSE(key_of(api_kind::chat, "m", R"({"temperature":0})", "", "")->sampled);
    EXPECT_FALSE(key_of(api_kind::chat, "m", R"({})", "", "")->sampled);
    EXPECT_TRUE(key_of(api_kind::chat, "m", R"({"temperature":0.7})", "", "")->sampled);
    EXPECT_FALSE(key_of(api_kind::chat, "m", "not json", "", ""));
    EXPECT_FALSE(key_of(api_kind::chat, "m", "[1,2]", "", ""));
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    EXPECT_EQ(json_scan::nesting_depth(deep), 100000u);
    EXPECT_FALSE(key_of(api_kind::chat, "m", R"({"a":)" + deep + "}", "", ""));
    EXPECT_EQ(json_scan::nesting_depth(R"({"a":"[[[[","b":[{}]})"), 3u);
}

TEST(KnownKeysTest, ARequestsExactTextFindsItsKeyWithinTheBounds) {
    net::io_context ioc;
    memory_cache memory(1 << 20);
    response_cache cache(memory, ioc.get_executor(), std::nullopt, 1 << 20,
                         std::chrono::system_clock::now);
    const std::string body = R"({"model":"gpt","messages":[{"role":"user","content":"hi"}]})";
    const auto key = *key_of(api_kind::chat, "gpt", body, "", "");
    std::string text;
    exact_text(api_kind::chat, "gpt", body, "", "", text);
    EXPECT_EQ(cache.known_key(text), nullptr);
    cache.remember_key(text, key);
    ASSERT_NE(cache.known_key(text), nullptr);
    EXPECT_EQ(cache.known_key(text)->digest, key.digest);
    // Whatever else the key covers is part of the text: another scope, model or API is
    // another text.
    std::string other;
    exact_text(api_kind::chat, "gpt", body, "key-1", "", other);
    EXPECT_EQ(cache.known_key(other), nullptr);
    exact_text(api_kind::chat, "gpt-2", body, "", "", other);
    EXPECT_EQ(cache.known_key(other), nullptr);
    exact_text(api_kind::messages, "gpt", body, "", "", other);
    EXPECT_EQ(cache.known_key(other), nullptr);
    // Too long a text is not remembered; past max_known_keys the table starts afresh.
    const std::string long_text(max_known_text + 1, 'x');
    cache.remember_key(long_text, key);
    EXPECT_EQ(cache.known_key(long_text), nullptr);
    for (std::size_t i = 0; i < max_known_keys; ++i) {
        cache.remember_key("text " + std::to_string(i), key);
    }
    EXPECT_EQ(cache.known_key(text), nullptr);
    EXPECT_NE(cache.known_key("text " + std::to_string(max_known_keys - 1)), nullptr);
}

} // namespace
} // namespace michi::cache
