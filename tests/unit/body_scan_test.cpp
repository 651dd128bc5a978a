#include "michi/pipeline/body_scan.hpp"

#include "michi/core/json_parse.hpp"

#include "michi/routing/pricing.hpp"
#include "michi/routing/pricing.hpp"
#include "michi/providers/token_estimate.hpp"

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace michi::pipeline {
namespace {

using routing::default_output_estimate;
using routing::expected_output_tokens;

// What the full path reads from the parsed body, for the members both paths read.
struct dom_facts {
    std::uint64_t prompt_tokens;
    std::uint64_t max_output;
    bool stream;
};

dom_facts from_dom(const std::string& body) {
    const auto j = nlohmann::json::parse(body);
    const auto stream = j.find("stream");
    return {providers::estimate_prompt_tokens(j), expected_output_tokens(j),
            stream != j.end() && stream->is_boolean() && stream->get<bool>()};
}

TEST(BodyScanTest, ReadsAnOrdinaryChatRequest) {
    const std::string body =
        R"({"model":"openai/gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"hello there"}]})";
    const auto f = scan_chat_body(body);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->model, "openai/gpt-4o-mini");
    EXPECT_EQ(body.substr(f->model_begin, f->model_end - f->model_begin), "\"openai/gpt-4o-mini\"");
    EXPECT_FALSE(f->stream);
    EXPECT_FALSE(f->wants_usage);
    EXPECT_FALSE(f->has_stream_options);
    EXPECT_FALSE(f->tools);
    EXPECT_FALSE(f->images);
    EXPECT_EQ(f->max_output, 16u);
    EXPECT_EQ(f->prompt_tokens, providers::per_message_overhead + (11 + 3) / 4);
}

TEST(BodyScanTest, AgreesWithTheFullParseOnEveryBodyItAccepts) {
    const std::vector<std::string> bodies = {
        R"({"model":"m","messages":[{"role":"user","content":"hi"}]})",
        R"( { "model" : "m" , "messages" : [ { "role" : "system" , "content" : "be brief" } , {"role":"user","content":"x"} ] } )",
        R"({"messages":[{"role":"user","content":"caf\u00e9 \ud83d\ude00 \"quoted\" \\ back\nslash"}],"model":"m"})",
        R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:x"}}]}]})",
        R"({"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","source":{}}, 7, "s", {"text":5}]}]})",
        R"({"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c"}]},{"role":"tool","content":"42"}]})",
        R"({"model":"m","max_completion_tokens":300,"max_tokens":20,"messages":[{"role":"user","content":"a"}]})",
        R"({"model":"m","max_completion_tokens":-1,"max_tokens":20,"messages":[{"role":"user","content":"a"}]})",
        R"({"model":"m","max_tokens":2.5,"messages":[{"role":"user","content":"a"}]})",
        R"({"model":"m","max_tokens":18446744073709551616,"messages":[{"role":"user","content":"a"}]})",
        R"({"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a"}]})",
        R"({"model":"m","stream":null,"stream_options":null,"messages":[{"role":"user","content":"a"}]})",
        R"({"model":"m","tools":[{"type":"function"}],"tool_choice":"auto","messages":[{"role":"user","content":"a"}]})",
        R"({"model":"m","temperature":0.2,"metadata":{"model":"not this one","messages":[]},"messages":[{"role":"user","content":"}{]["}]})",
    };
    for (const auto& body : bodies) {
        SCOPED_TRACE(body);
        const auto f = scan_chat_body(body);
        ASSERT_TRUE(f);
        const auto d = from_dom(body);
        EXPECT_EQ(f->prompt_tokens, d.prompt_tokens);
        EXPECT_EQ(f->max_output, d.max_output);
        EXPECT_EQ(f->stream, d.stream);
        EXPECT_EQ(f->model, nlohmann::json::parse(body)["model"].get<std::string>());
    }
}

TEST(BodyScanTest, ReadsStreamOptionsToolsAndImages) {
    auto f = scan_chat_body(
        R"({"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a"}]})");
    ASSERT_TRUE(f);
    EXPECT_TRUE(f->stream);
    EXPECT_TRUE(f->wants_usage);
    EXPECT_TRUE(f->has_stream_options);
    f = scan_chat_body(
        R"({"model":"m","stream_options":{"include_usage":false},"messages":[{"role":"user","content":"a"}]})");
    ASSERT_TRUE(f);
    EXPECT_FALSE(f->wants_usage);
    EXPECT_TRUE(f->has_stream_options);
    f = scan_chat_body(
        R"({"model":"m","tools":[ ],"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})");
    ASSERT_TRUE(f);
    EXPECT_FALSE(f->tools); // an empty array
    EXPECT_TRUE(f->images);
    f = scan_chat_body(
        R"({"model":"m","tools":[{"type":"function"}],"messages":[{"role":"user","content":"a"}]})");
    ASSERT_TRUE(f);
    EXPECT_TRUE(f->tools);
    EXPECT_FALSE(f->images);
    EXPECT_EQ(f->max_output, default_output_estimate);
}

TEST(BodyScanTest, LeavesEverythingUnusualToTheFullParse) {
    const std::vector<std::string> bodies = {
        "",
        "not json",
        "[]",
        R"({"model":"m","messages":[{"role":"user","content":"a"}]} trailing)",
        R"({"model":"m","messages":[{"role":"user","content":"a"}])",
        R"({"messages":[{"role":"user","content":"a"}]})",                    // no model
        R"({"model":"","messages":[{"role":"user","content":"a"}]})",         // empty model
        R"({"model":7,"messages":[{"role":"user","content":"a"}]})",          // not a string
        R"({"model":"g\u0070t","messages":[{"role":"user","content":"a"}]})", // escaped value
        R"({"model":"a","model":"b","messages":[{"role":"user","content":"a"}]})",
        R"({"mod\u0065l":"a","model":"b","messages":[{"role":"user","content":"a"}]})",
        R"({"model":"m"})", // no messages
        R"({"model":"m","messages":[]})",
        R"({"model":"m","messages":{}})",
        R"({"model":"m","messages":["hi"]})",
        R"({"model":"m","messages":[{"content":"a"}]})", // no role
        R"({"model":"m","messages":[{"role":1,"content":"a"}]})",
        R"({"model":"m","messages":[{"role":"user","role":"system","content":"a"}]})",
        R"({"model":"m","messages":[{"role":"user","content":"a","content":"b"}]})",
        R"({"model":"m","messages":[{"r\u006fle":"user","content":"a"}]})",
        R"({"model":"m","stream":"yes","messages":[{"role":"user","content":"a"}]})",
        R"({"model":"m","stream_options":"x","messages":[{"role":"user","content":"a"}]})",
        R"({"model":"m","stream_options":{"include_usage":1},"messages":[{"role":"user","content":"a"}]})",
        R"({"model":"m","system":"s","messages":[{"role":"user","content":"a"}]})",
        R"({"model":"m","input":"s","messages":[{"role":"user","content":"a"}]})",
        R"({"model":"m","messages":[{"role":"user","content":"bad \q escape"}]})",
        R"({"model":"m","messages":[{"role":"user","content":"lone \ud83d surrogate"}]})",
        R"({"model":"m","messages":[{"role":"user","content":"short \u12"}]})",
        R"({"model":"m","messages":[{"role":"user","content":[{"type":7}]}]})",
        R"({"model":"m","messages":[{"role":"user","content":[{"text":"a","text":"b"}]}]})",
        R"({"model":"m","max_tokens":1,"max_tokens":2,"messages":[{"role":"user","content":"a"}]})",
        // cut off (a value expected at the end of the text must not be read past it)
        R"({"model":)",
        R"({"model":"m","messages":[)",
        R"({"model":"m","messages":[{"role":"user","content":[)",
        R"({"model":"m","messages":[{"role":"user","content":[{"type":)",
        R"({"model":"m","messages":[{"role":"user","content":"a"},   )",
    };
    for (const auto& body : bodies) {
        EXPECT_FALSE(scan_chat_body(body)) << body;
    }
}

TEST(BodyScanTest, DecodedSizeCountsEscapesAsTheirBytes) {
    EXPECT_EQ(decoded_size("plain"), 5u);
    EXPECT_EQ(decoded_size(R"(a\"b\\c\/d\b\f\n\r\t)"), 12u);
    EXPECT_EQ(decoded_size(R"(\u0041)"), 1u);       // A
    EXPECT_EQ(decoded_size(R"(\u00e9)"), 2u);       // é
    EXPECT_EQ(decoded_size(R"(\u20AC)"), 3u);       // €
    EXPECT_EQ(decoded_size(R"(\ud83d\ude00)"), 4u); // 😀
    EXPECT_EQ(decoded_size("caf\xC3\xA9"), 5u);     // raw UTF-8 counts its bytes
    EXPECT_FALSE(decoded_size(R"(\x)"));
    EXPECT_FALSE(decoded_size("\\"));
    EXPECT_FALSE(decoded_size(R"(\u12)"));
    EXPECT_FALSE(decoded_size(R"(\uzzzz)"));
    EXPECT_FALSE(decoded_size(R"(\ude00)"));       // a low surrogate alone
    EXPECT_FALSE(decoded_size(R"(\ud83d\u0041)")); // a high one without its low
    for (const std::string s : {"\\u0041\\u00e9\\u20ac\\ud83d\\ude00", "\\\"x\\\\"}) {
        const auto decoded = nlohmann::json::parse("\"" + s + "\"").get<std::string>();
        EXPECT_EQ(decoded_size(s), decoded.size()) << s;
    }
}

TEST(BodyScanTest, NeverAcceptsNestingTheFullParseRefuses) {
    const auto with = [](const std::string& member, std::size_t depth) {
        return R"({"model":"m",")" + member + R"(":)" + std::string(depth, '[') +
               std::string(depth, ']') + R"(,"messages":[{"role":"user","content":"hi"}]})";
    };
    // The body's object is one level: a member may nest 127 more under the default 128.
    EXPECT_TRUE(scan_chat_body(with("metadata", 127)));
    EXPECT_FALSE(scan_chat_body(with("metadata", 128)));
    EXPECT_FALSE(scan_chat_body(with("metadata", 100000)));
    // Inside a message (level 3) and a content part (level 5) the same limit holds.
    const auto in_message = [](std::size_t depth) {
        return R"({"model":"m","messages":[{"role":"user","content":"hi","x":)" +
               std::string(depth, '[') + std::string(depth, ']') + "}]}";
    };
    EXPECT_TRUE(scan_chat_body(in_message(125)));
    EXPECT_FALSE(scan_chat_body(in_message(126)));
    const auto in_part = [](std::size_t depth) {
        return R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","x":)" +
               std::string(depth, '[') + std::string(depth, ']') + "}]}]}";
    };
    EXPECT_TRUE(scan_chat_body(in_part(123)));
    EXPECT_FALSE(scan_chat_body(in_part(124)));
    // The process-wide limit (server.max_json_depth) is the scan's.
    json_parse::set_max_depth(16);
    EXPECT_TRUE(scan_chat_body(with("metadata", 15)));
    EXPECT_FALSE(scan_chat_body(with("metadata", 16)));
    json_parse::set_max_depth(json_parse::default_max_depth);
}

} // namespace
} // namespace michi::pipeline
