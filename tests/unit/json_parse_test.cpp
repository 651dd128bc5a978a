// The bounded JSON parse: nesting refused past the limit while parsing (at any depth of
// text, without recursion), the same value as nlohmann's own parse otherwise, and why a parse
// failed.

#include "michi/core/json_parse.hpp"

#include <gtest/gtest.h>

#include <string>

namespace michi::json_parse {
namespace {

std::string arrays(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(JsonParseTest, TheSameValueAsNlohmannsParse) {
    for (const std::string text :
         {R"({"a":[1,-2,3.5,true,false,null,"s\u00e9"],"b":{"c":{}},"a":"last wins"})",
          R"([[],{},[{"x":[1]}]])", R"("just a string")", "42", " null ", R"({"e":1e3})"}) {
        const auto r = parse(text, 8);
        ASSERT_TRUE(r) << text << ": " << r.message;
        EXPECT_EQ(r.value, nlohmann::json::parse(text)) << text;
        EXPECT_EQ(r.why, failure::none);
    }
}

TEST(JsonParseTest, NestingPastTheLimitIsRefusedWhileParsing) {
    EXPECT_TRUE(parse(arrays(128), 128));
    const auto deeper = parse(arrays(129), 128);
    EXPECT_FALSE(deeper);
    EXPECT_EQ(deeper.why, failure::too_deep);
    EXPECT_TRUE(deeper.value.is_discarded());
    EXPECT_EQ(deeper.message, "nested deeper than the limit of 128 levels");
    // Objects count as arrays do; a document far deeper costs no stack.
    EXPECT_EQ(parse(R"({"a":{"b":{"c":1}}})", 2).why, failure::too_deep);
    EXPECT_TRUE(parse(R"({"a":{"b":{"c":1}}})", 3));
    EXPECT_EQ(parse(arrays(1000000), 128).why, failure::too_deep);
    // Refused as soon as the limit is passed, even if the text breaks off later.
    EXPECT_EQ(parse(std::string(500, '['), 100).why, failure::too_deep);
}

TEST(JsonParseTest, SyntaxErrorsSayWhatTheParserSaid) {
    for (const std::string text : {"", "{", R"({"a":})", "[1,]", "1 2", "\"\xff\"", "1e400"}) {
        const auto r = parse(text, 128);
        EXPECT_FALSE(r) << text;
        EXPECT_EQ(r.why, failure::syntax) << text;
        EXPECT_NE(r.message.find("[json.exception."), std::string::npos) << r.message;
        EXPECT_TRUE(parse_value(text, 128).is_discarded());
    }
    // The message quotes the token the parser stopped at, but never at length.
    const auto long_token = parse("[\"" + std::string(100000, 'x') + "\x01\"]", 128);
    EXPECT_EQ(long_token.why, failure::syntax);
    EXPECT_LE(long_token.message.size(), 310u);
}

TEST(JsonParseTest, TheProcessWideLimitIsTheDefaultOfTheShortForms) {
    EXPECT_EQ(max_depth(), default_max_depth);
    set_max_depth(16);
    EXPECT_TRUE(parse_value(arrays(16)).is_array());
    EXPECT_TRUE(parse_value(arrays(17)).is_discarded());
    EXPECT_EQ(parse(arrays(17)).why, failure::too_deep);
    set_max_depth(default_max_depth);
    EXPECT_TRUE(parse_value(arrays(17)).is_array());
}

} // namespace
} // namespace michi::json_parse
